"""The privileges tests hand to the data layer instead of reading this process's own."""

from __future__ import annotations

from numatui.model.privileges import Privileges

ROOT = Privileges(uid=0, is_root=True, cap_sys_nice=True, cap_sys_ptrace=True)
"""Root with every capability a migration asks about (MPOL_MF_MOVE_ALL, other users)."""

USER = Privileges(uid=1000, is_root=False, cap_sys_nice=False, cap_sys_ptrace=False)
"""An ordinary user: no capability, so only its own processes and only unshared pages."""
