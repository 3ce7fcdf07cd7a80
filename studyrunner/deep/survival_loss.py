r"""Multi-label margin loss of the survival network (the nsclc_ici study, equations [1] and [2]).

Source: Transl Lung Cancer Res 2022;11(4):670-685 (the nsclc_ici study), Methods, "Development and
evaluation of OSRS and PFSRS". The text extraction of the formulas is garbled; the glyphs
of each exponent (and the order of their subscripts) read as follows::

    [1] "patients with multiple goals":
        loss = log( 1 + sum_{i in N, j in O} e^{gamma (s_i - s_j + m)}
                      + sum_{i in N}         e^{gamma (s_i - s_0)} )
    [2] "patients with single goals":
        loss = log( 1 + sum_{i in N, j in O} e^{gamma (s_i - s_j + m)}
                      + sum_{i in N}         e^{gamma (s_i - s_0)}
                      + sum_{j in O}         e^{gamma (s_0 - s_j + m)} )

s_k is the network's score for interval k, gamma the scale, m the margin, s_0 a threshold
score, N the negative intervals and O the target intervals. The third exponent of [2]
prints as "s −γ ( s + m )" over subscripts "0 j"; its glyphs (γ, s_0, −, s_j, +, m) are
those of gamma (s_0 - s_j + m), the symmetric counterpart of the negative-threshold term
(a target's score must exceed the threshold by the margin). The literal order
s_0 - gamma (s_j + m) would make m a loosening, not a margin, and is read as a
typesetting slip.

Which patients get which equation (our reading; the paper's labels are "multiple goals"
and "single goals"): a patient with the endpoint has a single goal, the one interval
holding its event time (O = {that interval}, N = the others): equation [2]. A censored
patient at time t has several possible goals, the intervals its event may still fall in
(O = the intervals not yet over at t, N = the intervals that ended by t, the known
negatives): equation [1], which pushes each known negative below every possible goal by m
and below the threshold, but asks no single possible goal to pass the threshold. Every
term of [1] involves a known negative, so a censored patient with no known negative
contributes log(1) = 0.

Both equations are one formula over labels ``(targets, known)`` from
:func:`studyrunner.deep.intervals.interval_labels`::

    N = known & target == 0      (negatives)
    P = known & target == 1      (known goals: the event interval)
    O = P | ~known               (goals: known or still possible)
    loss = log(1 + sum_{i in N, j in O} exp(gamma (s_i - s_j + m))
                 + sum_{i in N} exp(gamma (s_i - s_0))
                 + sum_{j in P} exp(gamma (s_0 - s_j + m)))

For a patient with the event P = O and this is [2]; for a censored patient P is empty and
this is [1]. It is computed as a logsumexp over the (masked) exponents and 0, so large
gamma does not overflow.

The form is the unified / circle loss of Sun et al., "Circle Loss: A Unified Perspective
of Pair Similarity Optimization", CVPR 2020 (log(1 + sum_{i,j} exp(gamma (s_n^j - s_p^i +
m)))) with a threshold score s_0 added, as in its multi-label classification use, so that
the scores also separate targets from non-targets in absolute terms. The paper gives no
values for gamma, m and s_0 (they would be in its Appendix 2/3, not in the text), so they
are required arguments here.
"""

from __future__ import annotations

import torch

from studyrunner.errors import InputError


class SurvivalIntervalLoss(torch.nn.Module):
    """Interval loss of the nsclc_ici study; ``forward(scores [B, K], targets [B, K], known [B, K])``.

    ``targets`` and ``known`` may be numpy arrays or tensors (moved to the scores' device).
    ``reduction``: ``"mean"`` (default, mean over all B patients, zero-contribution ones
    included), ``"sum"`` or ``"none"`` (per-patient losses, shape [B]).
    """

    def __init__(self, *, gamma: float, margin: float, threshold: float, reduction: str = "mean"):
        super().__init__()
        if not gamma > 0:
            raise InputError(f"gamma is {gamma!r}; need a scale > 0")
        if reduction not in ("mean", "sum", "none"):
            raise InputError(f"reduction is {reduction!r}; need 'mean', 'sum' or 'none'")
        self.gamma = float(gamma)
        self.margin = float(margin)
        self.threshold = float(threshold)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, margin={self.margin}, threshold={self.threshold}, reduction={self.reduction!r}"

    def forward(self, scores: torch.Tensor, targets, known) -> torch.Tensor:
        if scores.dim() != 2:
            raise InputError(f"scores has shape {tuple(scores.shape)}; need [patients, intervals]")
        targets = torch.as_tensor(targets, device=scores.device)
        known = torch.as_tensor(known, device=scores.device)
        for name, arr in (("targets", targets), ("known", known)):
            if tuple(arr.shape) != tuple(scores.shape):
                raise InputError(f"{name} has shape {tuple(arr.shape)}; scores has {tuple(scores.shape)}")
        known = known.to(torch.bool)
        bad = ~((targets == 0) | (targets == 1))
        if bool(bad.any()):
            row, col = (int(v) for v in torch.nonzero(bad)[0])
            raise InputError(f"targets: row {row}, interval {col} is {targets[row, col].item()!r}; need 0 or 1")
        is_target = targets == 1
        neg = known & ~is_target  # N
        pos = known & is_target  # P, known goals
        goal = pos | ~known  # O, known or possible goals

        g, m, s0 = self.gamma, self.margin, self.threshold
        b = scores.shape[0]
        # pairwise exponents gamma (s_i - s_j + m), i in N (rows), j in O (columns)
        pair = g * (scores[:, :, None] - scores[:, None, :] + m)
        pair_mask = neg[:, :, None] & goal[:, None, :]
        neg_thr = g * (scores - s0)
        pos_thr = g * (s0 - scores + m)
        logits = torch.cat([pair.reshape(b, -1), neg_thr, pos_thr, scores.new_zeros(b, 1)], dim=1)
        mask = torch.cat(
            [pair_mask.reshape(b, -1), neg, pos, torch.ones(b, 1, dtype=torch.bool, device=scores.device)],
            dim=1,
        )
        logits = logits.masked_fill(~mask, float("-inf"))
        per_patient = torch.logsumexp(logits, dim=1)
        if self.reduction == "none":
            return per_patient
        if self.reduction == "sum":
            return per_patient.sum()
        return per_patient.mean()
