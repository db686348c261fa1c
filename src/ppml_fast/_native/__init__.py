"""Native kernels (Cython and Numba). No argument validation happens here: the public
modules validate, convert and allocate, then call these with typed arrays."""
