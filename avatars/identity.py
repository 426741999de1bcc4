"""The identity guard: no two brands own the same face, and nobody owns the average face.

A persona's identity is the mean of its W+ rows in the model's identity group
(in this product those rows always move together: seeds broadcast one w over
all rows, edits add one vector to a whole group, mixes copy whole groups, so
the mean is the rows' common value); distances are Euclidean. Personas of the
same brand may be as alike as the brand wants. With the guard on
(`model.identity_min_distance` m > 0), on one generator model:

1. The average face is nobody's. Truncation pulls every seed towards a centre
   (w_avg, or for class-centre truncation the class's centre; both kinds are
   stored, `model.identity_centres`), and ψ 0 is the centre itself, whatever the
   seed. A face whose identity is within `IDENTITY_CENTRE_FRACTION` (0.25) of
   D of the nearest centre, D being the median distance of random personas
   (seeds at ψ 0.7) from theirs (`model.identity_centre_distance`), is refused
   for every brand: "too close to the average face to be owned". Truncation
   moves a seed to ψ/0.7 of its ψ 0.7 distance, so this refuses ψ 0.1 and
   below always and ψ 0.2 for about one seed in eight, and lets every seed at
   ψ 0.3, 0.5 and 0.7 through (3 000 seeds each, on the tests' model and on
   the bundled one).
2. Two brands' faces must be apart by m, scaled down near the centre: a
   persona of brand A at distance r_A from its centre and one of brand B at r_B
   must be at least m·min(1, min(r_A, r_B)/D) apart. Truncation is a uniform
   contraction about the centre: at ψ every distance between two seeds is
   ψ/0.7 of what it is at ψ 0.7, where m was calibrated. With a fixed m,
   low-ψ faces crowd into each other's guard distance: on the bundled model,
   200 personas of one class at ψ 0.3 blocked every seed of that class at
   ψ 0.2 and 0.3 and a third at ψ 0.5 for every other brand. Scaled, two seeds
   at one ψ clash about as often as they would at ψ 0.7 (exactly so when both
   lie within D of the centre), and those 200 block none, so nobody can claim
   the middle of the space; a persona still blocks its own face and near-copies
   (farther than D from the centre the distance stays m; on the bundled model
   another brand's copy of a ψ 0.7 persona's seed is refused from ψ 0.45 up).
   Rule 1 is what stops the scaled distance vanishing at the centre itself.

Models registered before migration 0009 have no centres yet (empty, D 0.0):
the guard calibrates such a model on its first identity change and writes the
result to its row. That loads the engine (PyTorch) once in that process, even
in a web process, which otherwise never needs it; a model whose checkpoint
cannot load refuses identity changes until it can.

A refusal says which rule and never how close the face came, nor whose it is:
a distance would let a brand probe other brands' identities.

Fast at scale without an ANN library:
- each identity is also kept as a compact embedding: its projection on k
  orthonormal vectors (the model's identity basis, k = 64). Projecting on
  orthonormal vectors never lengthens a vector, so the compact distance is a
  lower bound of the real one: a persona at compact distance ≥ the minimum is
  certainly far enough;
- each process keeps, per model, a matrix of every persona's compact embedding
  (IdentityFingerprint rows, read incrementally by id) and compares against all
  of them by brute force in NumPy;
- the few personas closer than the query's (scaled) minimum in compact space
  are re-checked exactly with their full embeddings from the database (the
  pair's minimum is at most the query's, so none is missed).

Identity changes of one model are serialised by locking the model's row, so a
check and the fingerprint written after it cannot interleave with another
brand's (on PostgreSQL; SQLite serialises writers anyway).
"""

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError

from generation.models import GeneratorModel

from .models import IdentityFingerprint

F4 = np.dtype("<f4")

# Faces closer to a centre than this fraction of the median distance of random
# personas (seeds at ψ 0.7) from theirs are the average face: nobody may own them.
IDENTITY_CENTRE_FRACTION = 0.25

logger = logging.getLogger(__name__)


def identity_embedding(latent, model):
    """The mean of the identity rows of `latent` [num_ws, w_dim] as float32 [w_dim]."""
    return latent[model.identity_rows].mean(axis=0, dtype=np.float64).astype(np.float32)


def identity_rows_changed(latent, parent_latent, model):
    rows = model.identity_rows
    return parent_latent is None or not np.array_equal(latent[rows], parent_latent[rows])


@dataclass
class _ModelIndex:
    """One model's compact embeddings: row i is persona persona_ids[i] of brand brand_ids[i]."""

    k: int
    last_id: int = 0
    rows_seen: int = 0
    last_created_at: object = None
    slot_of: dict = field(default_factory=dict)
    persona_ids: np.ndarray = None
    brand_ids: np.ndarray = None
    fingerprint_ids: np.ndarray = None
    squared_norms: np.ndarray = None
    matrix: np.ndarray = None
    size: int = 0

    def __post_init__(self):
        self.persona_ids = np.zeros(0, np.int64)
        self.brand_ids = np.zeros(0, np.int64)
        self.fingerprint_ids = np.zeros(0, np.int64)
        self.squared_norms = np.zeros(0, np.float32)
        self.matrix = np.zeros((0, self.k), np.float32)

    def add(self, rows):
        for fingerprint_id, persona_id, brand_id, projected, created_at in rows:
            slot = self.slot_of.get(persona_id)
            if slot is None:
                slot = self.size
                self._grow(slot + 1)
                self.slot_of[persona_id] = slot
                self.size += 1
            self.persona_ids[slot], self.brand_ids[slot] = persona_id, brand_id
            self.fingerprint_ids[slot] = fingerprint_id
            self.matrix[slot] = np.frombuffer(bytes(projected), dtype=F4)
            self.squared_norms[slot] = float(self.matrix[slot] @ self.matrix[slot])
            if fingerprint_id > self.last_id:
                self.last_id, self.last_created_at = fingerprint_id, created_at
            self.rows_seen += 1

    def _grow(self, needed):
        if needed <= len(self.persona_ids):
            return
        capacity = max(needed, 2 * len(self.persona_ids), 1024)
        for name in ("persona_ids", "brand_ids", "fingerprint_ids", "squared_norms"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        matrix = np.zeros((capacity, self.k), np.float32)
        matrix[: len(self.matrix)] = self.matrix
        self.matrix = matrix

    def near(self, query, radius, exclude_brand_id, margin=True):
        """Fingerprint ids of other brands' personas within `radius` in compact space
        (with `margin`, a little beyond, for an exact re-check to decide)."""
        n = self.size
        # |m - q|² = |m|² - 2 m·q + |q|²: one matrix-vector product over the index.
        squared = self.squared_norms[:n] - 2 * (self.matrix[:n] @ query) + float(query @ query)
        # Float32 rounding could push a borderline persona out; the exact check
        # below decides, so admit a small margin here.
        close = squared < ((radius * 1.001) ** 2 + 1e-4 if margin else radius**2)
        close &= self.brand_ids[:n] != exclude_brand_id
        return self.fingerprint_ids[:n][close].tolist()


_indexes = {}
_lock = threading.Lock()


def _index_for(model, space, k):
    """The process's index of `model`, brought up to date with the database.

    Rows are read incrementally (id > last seen). The index is rebuilt from
    scratch if the rows up to that id are no longer the ones it read: a
    different number of them (rows rolled back after the index read them, or
    committed late with lower ids), or a different row under the last id
    (SQLite reuses the ids of rolled-back rows). Both are index lookups.
    """
    fingerprints = IdentityFingerprint.objects.unscoped().filter(model=model, space=space)
    with _lock:
        index = _indexes.get((model.pk, space))
        if index is not None:
            seen = fingerprints.filter(id__lte=index.last_id).count()
            last = fingerprints.filter(id=index.last_id).values_list("created_at", flat=True).first()
            if seen != index.rows_seen or last != index.last_created_at or index.k != k:
                index = None
        if index is None:
            index = _ModelIndex(k=k)
            _indexes[(model.pk, space)] = index
        new = fingerprints.filter(id__gt=index.last_id).order_by("id")
        index.add(new.values_list("id", "persona_id", "brand_id", "projected", "created_at").iterator(chunk_size=5000))
        return index


def identity_centres(model):
    """`model`'s centres [n, w_dim] float32 and the median distance D of random
    personas from theirs.

    A model registered before they were stored is calibrated here (the engine,
    imported lazily, loads it once per process; the result is cached) and its
    row updated in the caller's transaction. `model` itself is left as read, so
    if that transaction rolls back (a refusal) the next check updates the row
    again instead of trusting values that were never stored."""
    if model.identity_calibrated:
        centres, distance = bytes(model.identity_centres), model.identity_centre_distance
    else:
        from generation.rendering import ModelUnavailable, identity_calibrate

        try:
            calibration = identity_calibrate(model=model)
        except ModelUnavailable:
            logger.exception("identity guard: cannot calibrate the centres of model %s", model.slug)
            raise ValidationError(
                f"Identity guard: model {model.slug} cannot be checked until its checkpoint loads; ask an operator.",
                code="identity_guard_unavailable",
            ) from None
        centres, distance = calibration.centres.astype(F4).tobytes(), calibration.centre_distance
        GeneratorModel.objects.filter(pk=model.pk).update(identity_centres=centres, identity_centre_distance=distance)
    return np.frombuffer(centres, dtype=F4).reshape(-1, model.w_dim), distance


def class_centres(model):
    """`model`'s class centres [c_dim, w_dim] float32 (a conditional model's), the
    points class-conditional truncation pulls towards: looks and poses relabel a
    persona by the shift between two of them."""
    if not model.c_dim:
        raise ValidationError(f"Model {model.slug} is unconditional: it has no class centres.")
    centres, _ = identity_centres(model)
    return centres[1:]


def identity_guard_prepare(model):
    """Calibrate a model registered before its centres were stored, before
    the caller opens its transaction: the engine then runs with no row locked.
    (identity_centres would otherwise do it inside the caller's transaction.)"""
    if model.identity_min_distance > 0 and not model.identity_calibrated:
        identity_centres(model)
        model.refresh_from_db(fields=["identity_centres", "identity_centre_distance"])


def identity_centre_distances(embeddings, centres):
    """Distance [n] of each identity in `embeddings` [n, w_dim] from the nearest of `centres`."""
    e, c = np.atleast_2d(embeddings).astype(np.float64), centres.astype(np.float64)
    squared = (e * e).sum(axis=1)[:, None] - 2 * (e @ c.T) + (c * c).sum(axis=1)[None]
    return np.sqrt(np.maximum(squared.min(axis=1), 0))


def identity_guard_check(*, brand, model, latent, embedding=None):
    """ValidationError if `latent`'s identity is the average face, or the same
    person as any other brand's persona on `model` (see the module docstring).
    Call with the model row locked (identity_lock) in the transaction that then
    records the fingerprint. `embedding`: the learned embedding of `latent`'s
    render, when the model has one (identity_learned_embedding, computed before
    the transaction)."""
    minimum = model.identity_min_distance
    if minimum <= 0:
        return
    centres, typical = identity_centres(model)
    if model.identity_learned:
        _centre_rule(model, latent, centres, typical)
        return _learned_rule(brand, model, embedding)
    embedding = identity_embedding(latent, model)
    from_centre = _centre_rule(model, latent, centres, typical)
    query = model.identity_basis_array() @ embedding
    radius = minimum * min(1.0, from_centre / typical)
    basis_k = len(model.identity_basis) // (4 * model.w_dim)
    candidates = _index_for(model, IdentityFingerprint.Space.W, basis_k).near(query, radius, exclude_brand_id=brand.pk)
    if not candidates:
        return
    # The guard compares across brands on purpose; it reveals only that some
    # other brand's persona is too close: never which, nor how close.
    stored = IdentityFingerprint.objects.unscoped().filter(pk__in=candidates).values_list("embedding", flat=True)
    others = np.stack([np.frombuffer(bytes(e), dtype=F4) for e in stored]).astype(np.float64)
    distances = np.linalg.norm(others - embedding, axis=1)
    nearer = np.minimum(from_centre, identity_centre_distances(others, centres))
    pair_minimum = minimum * np.minimum(1.0, nearer / typical)
    if (distances < pair_minimum).any():
        raise ValidationError(
            f"Identity guard: on model {model.slug}, a persona's identity layers ({model.identity_group}) must be at "
            "least the model's minimum distance from every other brand's personas. This face is too close to a "
            "persona another brand already owns on this model; choose another seed or edit the identity further.",
            code="identity_guard",
        )


def _centre_rule(model, latent, centres, typical):
    """Rule 1 (in W, whatever the measure): nobody owns the average face. Returns the
    identity's distance from the nearest centre."""
    from_centre = float(identity_centre_distances(identity_embedding(latent, model), centres)[0])
    if from_centre < IDENTITY_CENTRE_FRACTION * typical:
        raise ValidationError(
            f"Identity guard: on model {model.slug}, nobody may own the average face. This face is too close to "
            "the average face to be owned; raise ψ (truncation) or pick another seed.",
            code="identity_guard_centre",
        )
    return from_centre


def _learned_rule(brand, model, embedding):
    """Rule 2 with the model's identity embedding: another brand's persona whose
    render the embedding takes for the same person (cosine similarity at or above
    the measure's duplicate threshold) blocks this one, whatever its latent.
    Unit vectors: |a - b|² = 2 - 2 cos, so the index's radius is exact."""
    if embedding is None:
        raise ValueError("the learned identity guard needs the render's embedding")
    threshold = model.identity_measure["duplicate_threshold"]
    radius = float(np.sqrt(max(2 - 2 * threshold, 0.0)))
    query = np.asarray(embedding, dtype=np.float32)
    index = _index_for(model, IdentityFingerprint.Space.LEARNED, len(query))
    if index.near(query, radius, exclude_brand_id=brand.pk, margin=False):
        raise ValidationError(
            f"Identity guard: on model {model.slug}, two brands may not own the same person. This persona looks "
            "like the same person as one another brand already owns on this model (even at another latent); "
            "choose another seed or edit the face further.",
            code="identity_guard",
        )


def identity_learned_embedding(*, model, latent):
    """The learned identity embedding [D] float32 of `latent`'s render on a model
    that has one, else None. Runs the engine: call it before opening the
    transaction that checks and records it."""
    if not model.identity_learned:
        return None
    from generation.rendering import identity_embed_latents

    return identity_embed_latents(model=model, latents=np.asarray(latent, dtype=np.float32)[None])[0]


def identity_lock(model):
    """Serialise identity changes on `model` until the transaction ends."""
    GeneratorModel.objects.select_for_update().filter(pk=model.pk).first()


def identity_fingerprint_record(*, persona, latent, embedding=None):
    """Record `latent`'s identity for the guard: in W, and with the learned
    `embedding` of its render when the model has one."""
    model = persona.model
    w_identity = identity_embedding(latent, model)
    fingerprints = [
        IdentityFingerprint(
            brand=persona.brand, persona=persona, model=model, space=IdentityFingerprint.Space.W,
            embedding=w_identity.astype(F4).tobytes(),
            projected=(model.identity_basis_array() @ w_identity).astype(F4).tobytes(),
        )
    ]  # fmt: skip
    if embedding is not None:
        vector = np.asarray(embedding, dtype=F4).tobytes()
        fingerprints.append(
            IdentityFingerprint(brand=persona.brand, persona=persona, model=model,
                                space=IdentityFingerprint.Space.LEARNED, embedding=vector, projected=vector)
        )  # fmt: skip
    for fingerprint in fingerprints:
        fingerprint.save()
    return fingerprints
