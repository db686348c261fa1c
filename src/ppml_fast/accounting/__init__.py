"""Privacy accounting: Opacus-compatible RDP, a PRV accountant with stated error bounds,
noise calibration, inverse queries and privacy budgets.

Modules: :mod:`.rdp` (``compute_rdp``, ``get_privacy_spent``, ``RDPAccountant``),
:mod:`.prv` (``PRVAccountant`` and its bounds), :mod:`.events` (the mechanisms an
accountant composes), :mod:`.calibration` (``create_accountant``, ``compose``,
``get_noise_multiplier``, ``get_max_steps``) and :mod:`.budget` (``PrivacyBudget``).
Everything public is importable from here.

Drop-in surface (Opacus semantics, the same numbers)
-----------------------------------------------------
``compute_rdp``, ``get_privacy_spent``, ``RDPAccountant`` and ``get_noise_multiplier``
return what ``opacus.accountants.analysis.rdp`` / ``opacus.accountants`` return: the RDP
of each order is the double Opacus computes, bit for bit (the kernel performs the same
operations with the same special functions), and the conversion and the bisection are
the same. A user replaces ``from opacus.accountants.analysis.rdp import compute_rdp,
get_privacy_spent`` with ``from ppml_fast.accounting import ...`` and every figure stays
the same. Differences, all in the direction of refusing nonsense: bad input raises
``ValueError`` naming the parameter (Opacus computes garbage or raises deep inside), a
numerical breakdown of the fractional-order series gives ``+inf`` for that order (Opacus
raises, returns NaN, or a negative RDP below -1e-9 at large fractional orders), a noise
multiplier below 1e-150 counts as 0, and ``steps = 0`` gives zeros (Opacus: NaN when the
RDP is infinite).

Maths
-----
A mechanism M is (α, ρ)-RDP when D_α(M(D) ‖ M(D')) <= ρ for neighbours D, D' (Mironov
2017). RDP composes additively; the Poisson-subsampled Gaussian's RDP is the series of
Mironov, Talwar & Zhang (2019), Section 3.3, and the conversion to (ε, δ)-DP is Balle et
al. (2020), Theorem 21 (see :mod:`.rdp`). The PRV accountant (Gopi, Lee & Wutschitz
2021) composes the privacy loss random variables by FFT with error bounds (their
Theorem 5.5; see :mod:`.prv`). :class:`PrivacyBudget` composes (ε, δ) releases by basic
or advanced composition (Dwork & Roth 2014; see :mod:`.budget`).

Security
--------
An accountant bounds the privacy loss of mechanisms *as described to it*: the guarantee
holds only if the noise really is Gaussian/Laplace from a secure source, sampling really
is Poisson with the stated rate, and every release is recorded. RDP and PRV upper bounds
are conservative; the PRV *estimate* and *lower* bound are not guarantees.
"""

from .._errors import PrivacyBudgetExhausted
from .budget import PrivacyBudget
from .calibration import MAX_SIGMA as MAX_SIGMA
from .calibration import compose, create_accountant, get_max_steps, get_noise_multiplier
from .events import Event as Event
from .events import GaussianEvent, LaplaceEvent, PoissonSampledEvent
from .prv import MAX_GRID as MAX_GRID
from .prv import DeltaBounds, EpsilonBounds, PRVAccountant
from .rdp import DEFAULT_ALPHAS, RDPAccountant, compute_rdp, get_privacy_spent
from .rdp import MAX_ORDER as MAX_ORDER
from .rdp import Number as Number

__all__ = [
    "DEFAULT_ALPHAS",
    "DeltaBounds",
    "EpsilonBounds",
    "GaussianEvent",
    "LaplaceEvent",
    "PRVAccountant",
    "PoissonSampledEvent",
    "PrivacyBudget",
    "PrivacyBudgetExhausted",
    "RDPAccountant",
    "compose",
    "compute_rdp",
    "create_accountant",
    "get_max_steps",
    "get_noise_multiplier",
    "get_privacy_spent",
]
