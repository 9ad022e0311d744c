#!/usr/bin/env bash
# Installs numatui from this checkout into its own virtual environment and puts the
# `numatui` command where the shell (and sudo) finds it:
#
#   sudo bash scripts/install.sh   # for everyone: venv in /opt/numatui, /usr/local/bin/numatui
#   bash scripts/install.sh        # just for you: venv in ~/.local/share/numatui, ~/.local/bin
#
# Why a venv of its own: Debian 12 / Ubuntu 24.04 mark their Python "externally managed"
# (PEP 668), so `pip install` into it is refused, and it must stay that way. Why the link in
# /usr/local/bin: sudo runs commands with its own secure_path
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), which has neither
# ~/.local/bin nor a pipx directory, and numatui needs root to read other users' memory.
#
# Needs Python >= 3.11 (python3, else python3.13 / 3.12 / 3.11 on PATH, or PYTHON=...). As
# root it apt-installs the venv module (python3.X-venv) when Debian/Ubuntu lack it.
# Running it again reinstalls from the checkout (an upgrade).
# Environment: PYTHON (interpreter), NUMATUI_VENV (venv folder), NUMATUI_BIN_DIR (link folder).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIN_MINOR=11

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

new_enough() { "$1" -c "import sys; sys.exit(sys.version_info < (3, $MIN_MINOR))" 2>/dev/null; }

find_python() {
    local candidate
    if [ -n "${PYTHON:-}" ]; then
        new_enough "$PYTHON" || fail "PYTHON=$PYTHON is not Python >= 3.$MIN_MINOR"
        echo "$PYTHON"
        return
    fi
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null && new_enough "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    local have
    have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
    fail "numatui needs Python >= 3.$MIN_MINOR; python3 here is $have.
  Ubuntu 22.04: sudo apt install python3.11 python3.11-venv
  RHEL/Rocky/Alma 9: sudo dnf install python3.11
  then run this script again (it finds python3.11 by itself)."
}

py=$(find_python)
version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

if [ "$(id -u)" = 0 ]; then
    venv=${NUMATUI_VENV:-/opt/numatui}
    bin_dir=${NUMATUI_BIN_DIR:-/usr/local/bin}
else
    venv=${NUMATUI_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/numatui}
    bin_dir=${NUMATUI_BIN_DIR:-$HOME/.local/bin}
fi

# Debian splits venv's pip bootstrap (ensurepip) into python3.X-venv.
if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing python$version-venv (the venv module) with apt-get..."
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$version-venv" >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq "python$version-venv" >/dev/null; }
    else
        fail "$py has no venv module: install python$version-venv (Debian/Ubuntu) and run again"
    fi
fi

echo "numatui: venv $venv (Python $version from $py)"
if [ ! -x "$venv/bin/python" ] || ! new_enough "$venv/bin/python"; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Built from a copy: pip builds a folder in place, and root-owned build/ and *.egg-info left
# in the user's checkout would break their own later installs. pip always rebuilds a local
# folder, so running this again installs the checkout as it is now.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$REPO" --exclude=__pycache__ -cf - pyproject.toml README.md numatui | tar -C "$src" -xf -
"$venv/bin/python" -m pip install -q "$src"

mkdir -p "$bin_dir"
link="$bin_dir/numatui"
if [ -e "$link" ] && [ ! -L "$link" ]; then
    fail "$link exists and is not a link this script made; remove it or set NUMATUI_BIN_DIR"
fi
ln -sfn "$venv/bin/numatui" "$link"
"$link" --version >/dev/null || fail "$link --version failed"
echo "numatui: installed $("$link" --version) as $link"
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "note: $bin_dir is not on your PATH; add it, or run $link" ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "note: this install is yours only; \`sudo numatui\` needs: sudo bash scripts/install.sh"
fi
