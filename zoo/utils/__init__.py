"""Small utilities with no zoo dependencies: atomic file writes and hashing."""

from zoo.utils.files import FileExistsRefusal, atomic_write, check_writable, file_lock, sha256_file

__all__ = ["atomic_write", "sha256_file", "check_writable", "file_lock", "FileExistsRefusal"]
