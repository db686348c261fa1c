"""Native kernels (Cython and Numba). No argument validation happens here: the public
modules validate, convert and allocate, then call these with typed arrays.

OpenMP waiting: GNU OpenMP makes a thread that waits at a barrier spin for a long while
(``GOMP_SPINCOUNT``, 300,000 iterations by default) before it sleeps. On a machine where
another process holds a core, the spinning thread keeps its core while its partner waits
for a time slice, and a 1 ms kernel can take ten times as long.
Unless the user has chosen a policy (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set), the
spin is cut to 10,000 iterations, read by libgomp when the first kernel module loads it
(below this package, so this runs first); on a quiet machine the shorter spin costs nothing.
"""

import os as _os

if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"
