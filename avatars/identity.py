"""The identity guard: no two brands own the same face.

Rule: on one generator model, the identity of a persona of brand A must be at
least `model.identity_min_distance` away from the identity of every persona of
every other brand. A persona's identity is the mean of its W+ rows in the
model's identity group, and the distance is Euclidean. (In this product those
rows always move together: seeds broadcast one w over all rows, edits add one
vector to a whole group, mixes copy whole groups, so the mean is the rows'
common value.) Personas of the same brand may be as alike as the brand wants.

Fast at scale without an ANN library:
- each identity is also kept as a compact embedding: its projection on k
  orthonormal vectors (the model's identity basis, k = 64). Projecting on
  orthonormal vectors never lengthens a vector, so the compact distance is a
  lower bound of the real one: a persona at compact distance ≥ the minimum is
  certainly far enough;
- each process keeps, per model, a matrix of every persona's compact embedding
  (IdentityFingerprint rows, read incrementally by id) and compares against all
  of them by brute force in NumPy;
- the few personas closer than the minimum in compact space are re-checked
  exactly with their full embeddings from the database.

Identity changes of one model are serialised by locking the model's row, so a
check and the fingerprint written after it cannot interleave with another
brand's (on PostgreSQL; SQLite serialises writers anyway).
"""

import threading
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError

from generation.models import GeneratorModel

from .models import IdentityFingerprint

F4 = np.dtype("<f4")


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
            self.persona_ids[slot], self.brand_ids[slot], self.fingerprint_ids[slot] = persona_id, brand_id, fingerprint_id
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

    def near(self, query, radius, exclude_brand_id):
        """Fingerprint ids of other brands' personas within `radius` in compact space."""
        n = self.size
        # |m - q|² = |m|² - 2 m·q + |q|²: one matrix-vector product over the index.
        squared = self.squared_norms[:n] - 2 * (self.matrix[:n] @ query) + float(query @ query)
        # Float32 rounding could push a borderline persona out; the exact check
        # below decides, so admit a small margin here.
        close = squared < (radius * 1.001) ** 2 + 1e-4
        close &= self.brand_ids[:n] != exclude_brand_id
        return self.fingerprint_ids[:n][close].tolist()


_indexes = {}
_lock = threading.Lock()


def _index_for(model):
    """The process's index of `model`, brought up to date with the database.

    Rows are read incrementally (id > last seen). The index is rebuilt from
    scratch if the rows up to that id are no longer the ones it read: a
    different number of them (rows rolled back after the index read them, or
    committed late with lower ids), or a different row under the last id
    (SQLite reuses the ids of rolled-back rows). Both are index lookups.
    """
    fingerprints = IdentityFingerprint.objects.unscoped().filter(model=model)
    with _lock:
        index = _indexes.get(model.pk)
        basis_k = len(model.identity_basis) // (4 * model.w_dim)
        if index is not None:
            seen = fingerprints.filter(id__lte=index.last_id).count()
            last = fingerprints.filter(id=index.last_id).values_list("created_at", flat=True).first()
            if seen != index.rows_seen or last != index.last_created_at or index.k != basis_k:
                index = None
        if index is None:
            index = _ModelIndex(k=basis_k)
            _indexes[model.pk] = index
        new = fingerprints.filter(id__gt=index.last_id).order_by("id")
        index.add(new.values_list("id", "persona_id", "brand_id", "projected", "created_at").iterator(chunk_size=5000))
        return index


def identity_guard_check(*, brand, model, latent):
    """ValidationError if `latent`'s identity is closer than the model's minimum
    to any other brand's persona on `model`. Call with the model row locked
    (identity_lock) in the transaction that then records the fingerprint."""
    minimum = model.identity_min_distance
    if minimum <= 0:
        return
    embedding = identity_embedding(latent, model)
    query = model.identity_basis_array() @ embedding
    candidates = _index_for(model).near(query, minimum, exclude_brand_id=brand.pk)
    if not candidates:
        return
    # The guard compares across brands on purpose; it reveals only that some
    # other brand's persona is too close, never which.
    stored = IdentityFingerprint.objects.unscoped().filter(pk__in=candidates).values_list("embedding", flat=True)
    closest = min(float(np.linalg.norm(np.frombuffer(bytes(e), dtype=F4) - embedding)) for e in stored)
    if closest < minimum:
        raise ValidationError(
            f"Identity guard: on model {model.slug}, a persona's identity layers ({model.identity_group}) must be at "
            f"least {minimum:.3g} from every other brand's personas; this one is {closest:.3g} from another brand's "
            "persona. Choose another seed, or change the identity layers more.",
            code="identity_guard",
        )


def identity_lock(model):
    """Serialise identity changes on `model` until the transaction ends."""
    GeneratorModel.objects.select_for_update().filter(pk=model.pk).first()


def identity_fingerprint_record(*, persona, latent):
    model = persona.model
    embedding = identity_embedding(latent, model)
    return IdentityFingerprint.objects.create(
        brand=persona.brand,
        persona=persona,
        model=model,
        embedding=embedding.astype(F4).tobytes(),
        projected=(model.identity_basis_array() @ embedding).astype(F4).tobytes(),
    )
