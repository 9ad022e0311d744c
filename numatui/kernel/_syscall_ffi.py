# auto-generated file
import _cffi_backend

ffi = _cffi_backend.FFI('numatui.kernel._syscall_ffi',
    _version = 0x2601,
    _types = b'\x00\x00\x01\x0D\x00\x00\x09\x01\x00\x00\x01\x0F',
    _globals = (b'\x00\x00\x00\x23syscall',0,),
)
