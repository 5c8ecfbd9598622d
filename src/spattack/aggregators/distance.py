"""Krum per item (Blanchard et al., NeurIPS 2017, "Machine learning with adversaries:
Byzantine tolerant gradient descent"), on the expanded multiset of an item's rows.

Cost. Row i's score needs its distances to every row of its item: n_j^2 of them per
item, computed as Gram-matrix GEMMs (2d flops each) in blocks of KRUM_BLOCK_ELEMENTS
that stay in cache. The score is the sum of the m nearest, which takes a selection per
row; instead of selecting on every row, `_nearest_sums` bounds every row's score with a
pass or two and selects only on the rows that can still have their item's lowest score.
Items where every other row counts (m = n_j - 1, e.g. n_j <= f) need no distance matrix:
their scores have a closed form in O(n_j d).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from .groups import Groups, in_threads, use_numpy
from .kth import kth_largest, merged_kth_largest
from .order import check_f

# Distances per block on CPU: small enough to stay in cache, large enough to amortise
# Python; on GPUs, large enough to fill the device.
KRUM_BLOCK_ELEMENTS = 1 << 21
KRUM_BLOCK_ELEMENTS_GPU = 1 << 27
# Values per block of the passes over an item's rows (about a core's L2 cache).
ROW_BLOCK_ELEMENTS = 1 << 18
# Buckets per doubling of the row count: a bucket's distances cost (Q / n)^2 of its items'
# own, so for wide items (more than 2^(FINE_FROM - 1) rows) finer buckets than the other
# rules' 4 pay; for narrow ones, the calls per bucket cost more than the padding.
SPLITS, FINE_SPLITS, FINE_FROM = 4, 16, 10
# Items with at most this many plain rows are scored exactly on every row.
SMALL = 128
# Multi-Krum bounds the scores only of items of more than BOUND_FROM * f expanded rows:
# on fewer, the s = f + 1 largest distances it bounds by their mean are most of a row's,
# and 40-90% of the rows stay open (Steam under Fang at 5%), so that the bounds cost more
# than they save.
BOUND_FROM = 1.75
# A row is dropped when its lower bound exceeds its item's best score by this share: far
# above the rounding of a sum of a few thousand distances.
MARGIN = 1e-3
# Multi-Krum's bounds are differences of sums (an upper bound is a total less the largest
# entries): their rounding error is taken as this many eps of the magnitude of what they
# add, a few times the error of the cascaded sums over chunks that compute them.
ROUNDING = 64


def krum_neighbours(counts: torch.Tensor, f: int) -> torch.Tensor:
    """Number m of nearest rows scored by Krum for items with `counts` rows (see the
    package docstring)."""
    m = torch.where(counts > f + 2, counts - f - 2, torch.where(counts > f, counts - f, counts - 1))
    return torch.minimum(m.clamp_min(1), counts - 1).clamp_min(0)


def krum(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
         counts: torch.Tensor | None = None) -> torch.Tensor:
    """Per item, the uploaded row closest (summed squared distance) to its m nearest rows."""
    f = check_f(f)
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in groups.buckets(splits=_splits):
        plain, valid = bucket.plain_rows()
        heavy, weight = bucket.heavy_rows()
        rows = torch.cat([plain, heavy], 1) if bucket.heavy_width else plain
        weight = torch.cat([valid.to(weight.dtype), weight], 1)
        score = krum_scores(rows, weight, bucket.width, bucket.totals, f)
        out[bucket.ids] = _first_best(rows, score, bucket.upload_index())
    return out


def _splits(exponent: torch.Tensor) -> torch.Tensor:
    """Buckets per doubling for items of (2^(e-1), 2^e] rows (see FINE_FROM)."""
    return torch.where(exponent >= FINE_FROM, FINE_SPLITS, SPLITS)


def krum_scores(rows: torch.Tensor, weight: torch.Tensor, n_plain: int, totals: torch.Tensor,
                f: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """(b, Q) Krum score of every distinct row of a zero-padded (b, Q, d) block whose
    first `n_plain` columns are plain rows and the others heavy ones; `weight` (b, Q) the
    multiplicities (0 on padding), `totals` (b,) the expanded rows per item. Padding, and
    rows that provably do not have their item's lowest score, score inf. With `keep` (b,)
    (Multi-Krum), the scores rank the rows for taking the keep lowest expanded rows: rows
    provably among them score -inf, rows provably not inf, the others exactly
    (`_ranked_sums`; only on items of more than SMALL plain rows and BOUND_FROM * f
    expanded ones, the others' rows all scored exactly).

    Row i's multiset M_i holds its distance to every row, each counted by multiplicity
    (its own copies at 0). With m neighbours and t the (N - m)-th largest of M_i (N =
    totals), the m smallest distances to the others sum to sum_M min(D, t) - (N-1-m) t.
    """
    valid = weight > 0
    x = _scaled_centred(rows, valid)
    m = krum_neighbours(totals, f)
    score = x.new_full(valid.shape, torch.inf)
    everyone = m == totals - 1
    if bool(everyone.any()):
        xe = x if bool(everyone.all()) else x[everyone]  # no copy of a whole bucket
        score[everyone] = _sum_to_all(xe, _row_dots(xe, xe), weight[everyone])
    wide = n_plain > SMALL and use_numpy(x)  # the bounds pay only on wide items, and need numpy
    if keep is None:
        krum_rule = _nearest_sums if wide else _every_sum
        _score_items(score, ~everyone, x, weight, n_plain, totals, m, lambda space, ids: krum_rule(space))
    else:
        bounded = ~everyone & (totals > BOUND_FROM * f) if wide else torch.zeros_like(everyone)
        _score_items(score, ~everyone & ~bounded, x, weight, n_plain, totals, m, lambda space, ids: _every_sum(space))
        _score_items(score, bounded, x, weight, n_plain, totals, m, lambda space, ids: _ranked_sums(space, keep[ids]))
    return score.masked_fill_(~valid, torch.inf)


def _score_items(score, items, x, weight, n_plain, totals, m, rule) -> None:
    """score[items] = rule(the `_Space` of the items (b,) bool, their indices or slice(None))."""
    ids = torch.nonzero(items).squeeze(1)
    if ids.numel():
        ids = slice(None) if ids.numel() == x.shape[0] else ids  # no copy of a whole bucket
        score[ids] = rule(_Space.of(x[ids], weight[ids], n_plain, totals[ids], m[ids]), ids)


def _sum_to_all(x: torch.Tensor, sq: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(b, Q) sum_j w_j |x_i - x_j|^2 = W |x_i|^2 - 2 x_i . S + T, with W = sum_j w_j,
    S = sum_j w_j x_j and T = sum_j w_j |x_j|^2 (the score when m = n - 1); sq (b, Q) the
    squared norms."""
    w = weight.to(x.dtype)
    total = torch.bmm(w.unsqueeze(1), x)  # (b, 1, d)
    # x_i . S summed like |x_i|^2: a row's own term cancels exactly, so two rows tie exactly
    return w.sum(1, keepdim=True) * sq - 2 * _row_dots(x, total) + (w * sq).sum(1, keepdim=True)


@dataclass
class _Space:
    """The rows of b items, ready for distance blocks: Q = P plain + H heavy columns."""

    x: torch.Tensor  # (b, Q, d) scaled and shifted rows (`_scaled_centred`)
    sq: torch.Tensor  # (b, Q) squared norms
    weight: torch.Tensor  # (b, Q) multiplicities, 0 on padding
    n_plain: int  # P
    rank: torch.Tensor  # (b, 1) t is the rank-th largest entry of M_i: N - m
    surplus: torch.Tensor  # (b, 1) N - 1 - m

    @classmethod
    def of(cls, x, weight, n_plain, totals, m) -> "_Space":
        b = x.shape[0]
        return cls(x, _row_dots(x, x), weight, n_plain, (totals - m).view(b, 1),
                   (totals - 1 - m).view(b, 1).to(x.dtype))

    def take(self, ids: torch.Tensor) -> "_Space":
        """The items `ids` only (with their contiguous rows, where those are copies of x's:
        without heavy rows the plain rows are x itself, and a second copy would double the
        bytes moved)."""
        part = _Space(self.x[ids], self.sq[ids], self.weight[ids], self.n_plain, self.rank[ids], self.surplus[ids])
        for name in ("plain_x", "heavy_x"):
            made = self.__dict__.get(name)
            if made is not None and made.data_ptr() != self.x.data_ptr():
                part.__dict__[name] = made[ids]
        return part

    @property
    def heavy_weight(self) -> torch.Tensor:
        """(b, 1, H)"""
        return self.weight[:, None, self.n_plain:]

    @cached_property
    def plain_x(self) -> torch.Tensor:
        """(b, P, d) the plain rows, contiguous for the GEMMs; made once per space (with
        heavy rows, a copy), not once per distance pass."""
        return self.x[:, :self.n_plain].contiguous()

    @cached_property
    def heavy_x(self) -> torch.Tensor:
        """(b, H, d) the heavy rows, contiguous."""
        return self.x[:, self.n_plain:].contiguous()


def _blocks(space: _Space, index: torch.Tensor, items: torch.Tensor | None = None):
    """Distances from rows `index` (b, R) of every item (of `items` (b,) only, if given)
    to all its rows, in blocks of at most KRUM_BLOCK_ELEMENTS: yields (positions in
    `index`, the blocks' items in the space, index columns, plain (b', r, P), heavy (b', r,
    H)), with each row's distance to itself and to padding set to 0. With `items`, only the
    blocks' columns are copied (`_Space.take` would copy the whole rows twice)."""
    b, n_rows = index.shape
    q, p, d = space.x.shape[1], space.n_plain, space.x.shape[2]
    plain_x, heavy_x = space.plain_x, space.heavy_x
    pad_from = int(space.weight[:, :p].gt(0).all(0).cumprod(0).sum())  # earlier columns are real everywhere
    for its, cols in _row_tiles(space.x, b, n_rows, q):
        idx = index[its, cols]
        if items is None:
            sel = its
            xr = space.x[its].gather(1, idx.unsqueeze(2).expand(-1, -1, d))
            sqr = space.sq[its].gather(1, idx).unsqueeze(2)
        else:
            sel = items[its]
            xr, sqr = space.x[sel.unsqueeze(1), idx], space.sq[sel.unsqueeze(1), idx].unsqueeze(2)
        plain = _distances(xr, sqr, plain_x[sel], space.sq[sel, None, :p], idx)
        if pad_from < p:  # padding columns sit at 0: never a t, never counted
            plain[:, :, pad_from:].masked_fill_(space.weight[sel, None, pad_from:p] == 0, 0)
        heavy = _distances(xr, sqr, heavy_x[sel], space.sq[sel, None, p:], idx - p)
        heavy.masked_fill_(space.heavy_weight[sel] == 0, 0)
        yield its, sel, cols, plain, heavy


def _distances(xr, sqr, xc, sqc, self_column: torch.Tensor | None = None) -> torch.Tensor:
    """(b, r, c) squared distances between rows xr (b, r, d) and columns xc (b, c, d) of
    the same items, sqr (b, r, 1) and sqc (b, 1, c) their squared norms; entry
    [.., i, self_column[.., i]] (a row and itself) set to 0."""
    dist = torch.add(sqr, sqc).baddbmm_(xr, xc.transpose(1, 2), alpha=-2)
    if self_column is None:
        return dist
    own = (self_column >= 0) & (self_column < dist.shape[2])
    if bool(own.any()):
        column = self_column.clamp(0, max(dist.shape[2] - 1, 0)).unsqueeze(2)
        dist.scatter_(2, column, torch.where(own.unsqueeze(2), 0, dist.gather(2, column)))
    return dist


def _nearest_sums(space: _Space) -> torch.Tensor:
    """(b, Q) the sum of each row's m nearest distances (to the others); inf for rows
    that provably cannot have their item's lowest score.

    Per row, F(tau) = sum_M min(D, tau) - (N-1-m) tau is concave in tau, with its
    maximum, the score, at t: its slope #{D > tau} - (N-1-m) turns from positive to <= 0
    there. So F at any tau >= 0 is a lower bound on the score, tight when tau is near t.
    Candidate rows, the plain row of least summed distance to the plain rows (a closed
    form) and, where the attackers' rows lie among the benign ones, every heavy row, are
    scored exactly: the lowest score caps the item's best score, and the central row's t
    serves as every row's tau (rows near the best have their t near it; where the
    attackers' rows lie among the benign ones, `_attackers_among` gives each row its
    own). One clamp-and-sum pass bounds every row; only rows whose bound does not exceed
    the cap (plus MARGIN) get the exact selection. Items where more than an eighth of the
    rows survive try the row of lowest bound as the next candidate (twice at most). On
    ML-1M's largest item, clean or under Spattack-D, 1 to 3 rows of 3,488 survive.
    """
    b, q = space.weight.shape
    valid = space.weight > 0
    # the central row of the plain rows: heavy rows (attackers) would pull it to them
    plain_only = space.weight.clone()
    plain_only[:, space.n_plain:] = 0
    candidate = _sum_to_all(space.x, space.sq, plain_only).masked_fill_(~valid, torch.inf).argmin(1, keepdim=True)
    best, t = _exact_sums(space, candidate)
    among, near = _attackers_among(space, candidate, t)
    if among.numel():  # the attackers' rows lie among the benign ones: score them too, for the cap
        heavy = torch.arange(space.n_plain, q, device=valid.device).expand(among.numel(), -1)
        score = _exact_sums(space, heavy, None if among.numel() == b else among)[0].masked_fill_(~valid[among, space.n_plain:], torch.inf)
        best[among] = torch.minimum(best[among], score.amin(1, keepdim=True))
    scored = torch.zeros_like(valid).scatter_(1, candidate, True)  # survivors whatever rounding says
    scored[among, space.n_plain:] = valid[among, space.n_plain:]
    if among.numel() == 0:
        lower = _lower_bounds(space, t.clamp_min(0))
    elif among.numel() == b:
        lower = _lower_bounds(space, near.clamp_min(0))
    else:
        rest = torch.nonzero(torch.ones_like(best, dtype=torch.bool).squeeze(1).index_fill_(0, among, False)).squeeze(1)
        lower = space.x.new_empty(b, q)
        lower[rest] = _lower_bounds(space.take(rest), t[rest].clamp_min(0))
        lower[among] = _lower_bounds(space.take(among), near.clamp_min(0))
    for _ in range(2):
        survive = valid & (lower <= best + MARGIN * best.abs()) | scored
        # a best score of 0 (rows equal to the attackers' copies, under -O) no candidate can
        # lower, nor any tau lift the bounds of the rows that tie with it
        todo = torch.nonzero((survive.sum(1) > q // 8) & (best.squeeze(1) > 0)).squeeze(1)
        if todo.numel() == 0:
            break
        extra = lower[todo].masked_fill(~valid[todo], torch.inf).argmin(1, keepdim=True)
        part = space.take(todo)
        score, tau = _exact_sums(part, extra)
        scored[todo] = scored[todo].scatter_(1, extra, True)
        best[todo] = torch.minimum(best[todo], score)
        lower[todo] = torch.maximum(lower[todo], _lower_bounds(part, tau.clamp_min(0)))
    survive = valid & (lower <= best + MARGIN * best.abs()) | scored
    return _survivor_sums(space, survive, candidate)


def _ranked_sums(space: _Space, keep: torch.Tensor) -> torch.Tensor:
    """(b, Q) keys that rank the rows as their exact scores do for taking the keep (b,)
    lowest expanded rows (Multi-Krum): -inf for rows whose score is provably below the
    keep-th lowest, inf for rows provably above it, the exact score for the others.

    The keep-th lowest score lies between B, the keep-th lowest lower bound, and A, the
    keep-th lowest upper bound (`_score_bounds`, at each row's `_sampled_tau`, each
    widened by its rounding error): rows whose upper bound is below B are in, rows whose
    lower bound is above A out, both by MARGIN of A. Fewer than keep rows can be in and
    at most N - keep out; an item whose bounds say otherwise (NaN, or rounding beyond the
    estimate) has every row scored. On ML-1M (round 4, f = 317) 2-20% of an item's rows
    are left, the fewer the wider the item: those alone get the exact selection."""
    valid = space.weight > 0
    lower, upper, error = _score_bounds(space, _sampled_tau(space).clamp_min_(0))
    lower, upper = lower - error, upper + error
    ceiling = _kth_lowest(upper.masked_fill(~valid, torch.inf), space.weight, keep)
    floor = _kth_lowest(lower.masked_fill(~valid, torch.inf), space.weight, keep)
    slack = MARGIN * torch.maximum(ceiling.abs(), floor.abs())
    inside = valid & (upper < floor - slack)
    outside = valid & (lower > ceiling + slack)
    undecided = valid & ~inside & ~outside  # NaN bounds decide nothing
    weight = space.weight.to(space.x.dtype)
    broken = ((weight * inside).sum(1) >= keep) | ((weight * outside).sum(1) > weight.sum(1) - keep)
    undecided[broken] = valid[broken]  # so every item keeps an undecided row (its counts leave one)
    exact = _survivor_sums(space, undecided, undecided.to(torch.int8).argmax(1, keepdim=True))
    return torch.where(undecided, exact, torch.where(inside, -torch.inf, torch.inf))


def _every_sum(space: _Space) -> torch.Tensor:
    """(b, Q) the exact score of every row (padding included: `krum_scores` masks it)."""
    b, q = space.weight.shape
    return _exact_sums(space, torch.arange(q, device=space.x.device).expand(b, q))[0]


def _score_bounds(space: _Space, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b, Q) lower and upper bounds on every row's score, at tau >= 0 (b, Q) per row,
    and (b, Q) a bound on their rounding errors: the lower one is the score at the row's
    t, and both close in on it as tau does.

    One pass (`_lower_bounds`) gives F(tau), the lower bound of `_nearest_sums`, and G,
    the entries of M_i above tau (ties at tau counting one half: they may go either
    side), c of them, c_h of which (sum S_h) are distances to heavy rows. The score is
    T - E, T the sum of M_i (a closed form) and E the sum of its s = N - 1 - m largest.
    E is at least the sum of any s entries; the bound takes the heavy ones of G whole
    when c_h < s (under -L they are most of E, and far larger than the rest) and bounds
    the others by means: the largest k of a set sum to at least k times its mean. So E
    >= S_h + (s - c_h) * mean(G without them) if they are enough, else their sum plus
    (s - c) * mean(the entries up to tau); when c_h >= s, E >= s * max(mean of G's heavy
    entries, mean of G)."""
    lower, above, heavy_above, heavy_sum = _lower_bounds(space, tau, count=True)
    total = _sum_to_all(space.x, space.sq, space.weight)
    s = space.surplus
    n = space.weight.sum(1, keepdim=True).to(space.x.dtype)  # N
    # what the sums add up (the closed form's terms, the clamped entries, s + c thresholds),
    # times ROUNDING eps: a bound on their rounding error
    magnitude = 2 * (n * space.sq + (space.weight * space.sq).sum(1, keepdim=True)) + (s + above) * tau
    error = ROUNDING * torch.finfo(space.x.dtype).eps * magnitude
    below = lower + (s - above) * tau  # the sum of the entries up to tau
    # counts are multiples of one half: a floor of 0.5 on divisors only guards the branches not taken
    plain_above, plain_sum = above - heavy_above, total - below - heavy_sum
    rest = s - heavy_above
    largest = torch.where(heavy_above >= s,
                          s * torch.maximum(heavy_sum / heavy_above.clamp_min(0.5), (total - below) / above.clamp_min(0.5)),
                          heavy_sum + torch.where(plain_above >= rest, rest * plain_sum / plain_above.clamp_min(0.5),
                                                  plain_sum + (rest - plain_above) * below / (n - above)))
    return lower, total - largest, error


def _kth_lowest(values: torch.Tensor, weight: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(b, 1) the k-th (b,) lowest entry of each row of the multiset holding values (b, Q)
    weight (b, Q) times each."""
    order = values.argsort(1)
    reached = weight.gather(1, order).cumsum(1) >= k.unsqueeze(1)
    return values.gather(1, order).gather(1, reached.to(torch.int8).argmax(1, keepdim=True))


def _sampled_tau(space: _Space, samples: int = 64) -> torch.Tensor:
    """(b, Q) an estimate of each row's t (the rank-th largest entry of M_i) from its
    distances to `samples` plain rows spread over the item, each standing for n_plain /
    samples rows, and to the heavy rows: t is the sample's value at the rank left once
    the heavy copies above a first estimate are counted exactly. Only the bounds'
    tightness depends on it. A few items at a time, so that the samples stay in cache."""
    b, q, d = space.x.shape
    p = space.n_plain
    n_plain = space.weight[:, :p].gt(0).sum(1, keepdim=True)  # (b, 1), plain rows first
    cols = ((torch.arange(samples, device=n_plain.device) + 0.5) * n_plain / samples).long()
    total = space.weight.sum(1, keepdim=True).to(space.x.dtype)
    out = space.x.new_empty(b, q)
    step = max(1, (ROW_BLOCK_ELEMENTS << 2) // (q * samples))
    for its in (slice(a, a + step) for a in range(0, b, step)):
        x, sq, rank = space.x[its], space.sq[its].unsqueeze(2), space.rank[its].to(space.x.dtype)
        xs = x.gather(1, cols[its].unsqueeze(2).expand(-1, -1, d))
        sample = _distances(x, sq, xs, space.sq[its].gather(1, cols[its]).unsqueeze(1))  # (b', Q, S)
        in_threads(lambda rows: rows.sort(axis=-1), sample.view(-1, samples).numpy())  # rank r from the largest: at S - r

        def at(rank: torch.Tensor) -> torch.Tensor:  # (b', Q, 1) from real-valued ranks (b', 1) or (b', Q)
            place = samples - rank.expand(sample.shape[:2]).round().clamp(1, samples).long()
            return sample.gather(2, place.unsqueeze(2))

        if q > p:
            heavy = _distances(x, sq, space.heavy_x[its], space.sq[its, None, p:])  # (b', Q, H)
            guess = at(rank * samples / total[its])
            rank = rank - ((heavy > guess) * space.weight[its, None, p:]).sum(2)  # plain entries above t
        out[its] = at(rank * samples / n_plain[its]).squeeze(2)
    return out


def _attackers_among(space: _Space, candidate: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The items (int64) whose attackers' rows lie among the benign ones, and (b', Q) a tau
    per row for their bounds, given the central candidate (b, 1) and its t (b, 1).

    Such an item is one where the central row's t is its distance to a heavy row h (-O:
    position N - m of its distances lies in the attackers' run). So does every row's t
    whose run covers that position, at the row's own distance to h: for those rows the
    bound at tau_i = |x_i - x_h|^2 is the score itself, and the rows of such items need no
    exact selection. (Under -L the attackers' rows lie far from every benign row, a benign
    row's t is a distance between benign rows, and the central row's t is the right tau.)
    On ML-1M under Spattack-O-D at 15% (round 8), a tau per item (the plain rows' median
    distance to h) left 20-72 rows an item to be scored exactly in the buckets of 257-577
    rows; a tau per row leaves one, the attackers' row."""
    b, q = space.weight.shape
    p = space.n_plain
    if q == p:
        return candidate.new_empty(0), space.x.new_empty(0, q)
    d = space.x.shape[2]
    xc = space.x.gather(1, candidate.unsqueeze(2).expand(-1, 1, d))
    # the central row's distance to each heavy row, computed as `_exact_sums` does
    to_heavy = _distances(xc, space.sq.gather(1, candidate).unsqueeze(2), space.heavy_x,
                          space.sq[:, None, p:], candidate - p).squeeze(1)  # (b, H)
    in_run = ((to_heavy - t).abs() <= 1e-4 * to_heavy.abs()) & (space.weight[:, p:] > 0)
    among = torch.nonzero(in_run.any(1)).squeeze(1)
    if among.numel() == 0:
        return among, space.x.new_empty(0, q)
    row = (p + in_run[among].to(torch.int8).argmax(1)).view(-1, 1)
    xr = space.x[among.unsqueeze(1), row]  # (b', 1, d), without a copy of the items' rows
    sqr = space.sq[among].gather(1, row).unsqueeze(2)
    plain = space.plain_x if among.numel() == b else space.plain_x[among]
    heavy = space.heavy_x if among.numel() == b else space.heavy_x[among]
    near = torch.cat([_distances(xr, sqr, plain, space.sq[among, None, :p]),
                      _distances(xr, sqr, heavy, space.sq[among, None, p:], row - p)], 2)
    return among, near.squeeze(1)


def _survivor_sums(space: _Space, survive: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """(b, Q) the exact sums of the rows where `survive` (b, Q), inf elsewhere; `first`
    (b, 1) a survivor of each item. Items are scored in groups of like survivor counts
    (within a factor of two), each padded to its own largest count: late in training
    a few items of a bucket keep a hundred survivors while most keep a handful."""
    n = survive.sum(1)
    order = torch.sort(survive.to(torch.int8), dim=1, descending=True, stable=True).indices
    out = torch.full(survive.shape, torch.inf, dtype=space.x.dtype, device=survive.device)
    level = torch.frexp(n.to(torch.float32) - 0.5).exponent  # n in (2^(level-1), 2^level]
    for value in torch.unique(level).tolist():
        ids = torch.nonzero(level == value).squeeze(1)
        width = int(n[ids].max())
        # the survivors of each item first; padding repeats a survivor, so writing back is safe
        index = torch.where(torch.arange(width, device=n.device) < n[ids, None], order[ids, :width], first[ids])
        part = None if ids.numel() == n.numel() else ids
        out[ids] = out[ids].scatter_(1, index, _exact_sums(space, index, part)[0])
    return out


def _lower_bounds(space: _Space, tau: torch.Tensor, count: bool = False):
    """(b, Q) lower bounds F_i(tau_i) on every row's score, tau >= 0 (b, 1) per item or
    (b, Q) per row (see `_nearest_sums`). Distances between plain rows are symmetric: each
    pair of row chunks is computed once, its clamped block summed along rows for the first
    chunk and along columns for the second (about half the flops of the full matrix for
    wide items; with a tau per row, the block is clamped once for each). Distances to
    padding (|x_i|^2: padding rows are 0) are subtracted, not masked. With `count`, also
    (b, Q) how many entries of each row's multiset M_i (by multiplicity) exceed its tau,
    entries equal to tau counting one half (from the sum of sign(D - tau), a third of the
    cost of counting with a comparison), and (b, Q) how many of them, and their sum, are
    distances to heavy rows (`_score_bounds`)."""
    b, q, _ = space.x.shape
    p = space.n_plain
    x, sq = space.x, space.sq
    per_row = tau.shape[1] > 1
    out = x.new_zeros(b, q)
    balance = x.new_zeros(b, q) if count else None  # sum of w sign(D - tau)
    heavy_above, heavy_sum = (x.new_zeros(b, q), x.new_zeros(b, q)) if count else (None, None)
    for its, rows, cols in _chunk_pairs(x, b, p):
        dist = _block_distances(x, sq, its, rows, cols)
        at_rows = tau[its, rows].unsqueeze(2) if per_row else tau[its].unsqueeze(2)
        at_cols = tau[its, None, cols] if per_row else tau[its].unsqueeze(2)
        if count:
            balance[its, rows] += torch.sign(dist - at_rows).sum(2)
            if rows != cols:
                balance[its, cols] += torch.sign(dist - at_cols).sum(1)
        if not per_row:
            dist.clamp_(max=at_rows)
            out[its, rows] += dist.sum(2)
        elif rows != cols:
            out[its, rows] += torch.clamp(dist, max=at_rows).sum(2)
            dist.clamp_(max=at_cols)
        else:
            out[its, rows] += dist.clamp_(max=at_rows).sum(2)
        if rows != cols:
            out[its, cols] += dist.sum(1)
    if q > p:  # heavy rows against every row: the heavy rows' sums, and the plain rows' sums over heavy columns
        weight = space.heavy_weight.to(x.dtype)  # (b, 1, H)
        for its, rows in _row_tiles(x, b, q - p, q):
            heavy = slice(p + rows.start, p + rows.stop)
            dist = _block_distances(x, sq, its, heavy, slice(0, q))
            w = weight[its, 0, rows].unsqueeze(2)  # (b', r, 1) each heavy row's multiplicity
            at_plain = tau[its, None, :p] if per_row else tau[its].unsqueeze(2)
            at_heavy = tau[its, heavy].unsqueeze(2) if per_row else tau[its].unsqueeze(2)
            if count:  # with the heavy columns' entries above tau apart: w (sign + 1) / 2 of each
                sign = torch.sign(dist[:, :, :p] - at_plain)
                balance[its, :p] += (sign * w).sum(1)
                above = (sign + 1) * (w / 2)
                heavy_above[its, :p] += above.sum(1)
                heavy_sum[its, :p] += (above * dist[:, :, :p]).sum(1)
                sign = torch.sign(dist - at_heavy)
                above = (sign[:, :, p:] + 1) * (weight[its] / 2)
                balance[its, heavy] += sign[:, :, :p].sum(2) + (sign[:, :, p:] * weight[its]).sum(2)
                heavy_above[its, heavy] += above.sum(2)
                heavy_sum[its, heavy] += (above * dist[:, :, p:]).sum(2)
            if per_row:
                out[its, :p] += (torch.clamp(dist[:, :, :p], max=at_plain) * w).sum(1)
                dist.clamp_(max=at_heavy)
            else:
                dist.clamp_(max=at_plain)
                out[its, :p] += (dist[:, :, :p] * w).sum(1)
            out[its, heavy] += dist[:, :, :p].sum(2) + (dist[:, :, p:] * weight[its]).sum(2)
    padding = (p - space.weight[:, :p].gt(0).sum(1, keepdim=True)).to(x.dtype)  # (b, 1)
    lower = out - padding * torch.clamp(sq, max=tau) - space.surplus * tau
    if not count:
        return lower
    balance -= padding * torch.sign(sq - tau)
    return lower, (balance + space.weight.sum(1, keepdim=True).to(x.dtype)) / 2, heavy_above, heavy_sum


def _block_distances(x, sq, its: slice, rows: slice, cols: slice) -> torch.Tensor:
    """(b', r, c) squared distances between rows `rows` and `cols` of items `its`; a row's
    distance to itself exactly 0."""
    dist = _distances(x[its, rows], sq[its, rows].unsqueeze(2), x[its, cols], sq[its, None, cols])
    offset = rows.start - cols.start  # row i of the block is column i + offset
    if -dist.shape[1] < offset < dist.shape[2]:
        dist.diagonal(offset=offset, dim1=1, dim2=2).zero_()
    return dist


def _block_cap(x: torch.Tensor) -> int:
    """Most distances in one block: KRUM_BLOCK_ELEMENTS on CPU, KRUM_BLOCK_ELEMENTS_GPU
    elsewhere."""
    return KRUM_BLOCK_ELEMENTS if x.device.type == "cpu" else KRUM_BLOCK_ELEMENTS_GPU


def _chunk_pairs(x: torch.Tensor, n_items: int, width: int):
    """(items, rows, cols) for every pair of row chunks rows <= cols of the first `width`
    rows, chunks of about width / 8 rows (at least 128), items per block within
    `_block_cap`."""
    size = min(width, max(128, -(-width // 8)))
    chunks = [slice(a, min(a + size, width)) for a in range(0, width, size)]
    per_block = max(1, _block_cap(x) // (size * size))
    for a in range(0, n_items, per_block):
        for i, rows in enumerate(chunks):
            for cols in chunks[i:]:
                yield slice(a, a + per_block), rows, cols


def _row_tiles(x: torch.Tensor, n_items: int, n_rows: int, width: int):
    """(items, rows) slices of blocks of (items x rows x width) distances, at most
    `_block_cap`: several whole items, or rows of one item."""
    items_per_block = max(1, _block_cap(x) // (n_rows * width))
    rows_per_block = n_rows if items_per_block > 1 else max(1, _block_cap(x) // width)
    for a in range(0, n_items, items_per_block):
        for r in range(0, n_rows, rows_per_block):
            yield slice(a, a + items_per_block), slice(r, r + rows_per_block)


def _exact_sums(space: _Space, index: torch.Tensor,
                items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, R) the exact sum of the m nearest distances of rows `index` (b, R) of every item
    (of `items` (b,) only, if given), and (b, R) their thresholds t."""
    out, thresholds = space.x.new_empty(index.shape), space.x.new_empty(index.shape)
    for its, sel, cols, plain, heavy in _blocks(space, index, items):
        rank, surplus = space.rank[sel], space.surplus[sel]
        if heavy.shape[2] == 0:
            t = kth_largest(plain, rank.expand(-1, plain.shape[1])).clamp_min_(0)
            out[its, cols] = plain.clamp_(max=t).sum(2) - surplus * t.squeeze(2)
        else:
            weight = space.heavy_weight[sel]
            t = merged_kth_largest(plain, heavy, weight, rank, heavy_ahead=True).clamp_min_(0)
            total = plain.clamp_(max=t).sum(2) + (heavy.clamp_(max=t) * weight).sum(2)
            out[its, cols] = total - surplus * t.squeeze(2)
        thresholds[its, cols] = t.squeeze(2)
    return out, thresholds


def _first_best(rows: torch.Tensor, score: torch.Tensor, index: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(b, d) each item's row of lowest score; of tied rows, the earliest uploaded."""
    upload = torch.cat(index, 1)
    best = score.amin(1, keepdim=True)
    first = torch.where(score == best, upload, torch.iinfo(upload.dtype).max).argmin(1)
    return rows[torch.arange(rows.shape[0], device=rows.device), first]


def _scaled_centred(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each item's distinct rows of a zero-padded (b, Q, d) block shifted by its first row
    and scaled by a power of two. Neither changes which row Krum picks, but they keep the
    Gram-matrix distances finite (huge finite rows) and accurate (rows of one item share
    an offset, e.g. the weight decay term). Both are exact on rows of small integers, so
    equal distances stay equal and tied scores tie exactly. Done a few items at a time,
    so that each block is read from memory once and its later passes hit the cache."""
    first = x.gather(1, valid.long().argmax(1).view(-1, 1, 1).expand(-1, 1, x.shape[2]))
    out = torch.empty_like(x)
    for its in _item_blocks(x):
        y = torch.sub(x[its], first[its], out=out[its])
        padding = torch.nonzero(~valid[its].view(-1)).squeeze(1)
        if padding.numel():
            y.view(-1, y.shape[2]).index_fill_(0, padding, 0)
        amax = torch.maximum(y.amax((1, 2)), -y.amin((1, 2))).view(-1, 1, 1)  # max |y|, without a tensor of |y|
        y.mul_(torch.ldexp(torch.ones_like(amax), -torch.frexp(amax).exponent))
    return out


def _row_dots(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(b, Q) (x * y).sum(2) for x (b, Q, d) and y (b or 1, Q or 1, d), a few items at a
    time: the product stays in cache instead of making a round trip through memory."""
    out = x.new_empty(x.shape[:2])
    for its in _item_blocks(x):
        torch.sum(x[its] * y[its if y.shape[0] > 1 else slice(None)], 2, out=out[its])
    return out


def _item_blocks(x: torch.Tensor) -> list[slice]:
    """Slices of whole items of x (b, Q, d), about ROW_BLOCK_ELEMENTS values each on CPU
    (one block elsewhere)."""
    b = x.shape[0]
    if x.device.type != "cpu":
        return [slice(0, b)]
    step = max(1, ROW_BLOCK_ELEMENTS // max(1, x.shape[1] * x.shape[2]))
    return [slice(a, a + step) for a in range(0, b, step)]
