"""The local tagging model: a kernel-ridge and kNN first level, a pooled LightGBM second level.

Level 1 scores every (item, topic) pair from the labelled examples: multi-output kernel ridge
in four views (all blocks; title/description only; prompt words and structural cues; an RBF
kernel on the embeddings) over TF-IDF word and character n-grams, sentence embeddings (linear
and RBF) and structural cues, plus
similarity-weighted kNN over the embeddings and over the combined kernel. Level 2 is ONE
gradient-boosted classifier shared by all topics that reads those scores next to the topic's
keyword hints, regex cues, zero-shot similarity to its definition, its prior, and label
co-occurrence (what the other topics' scores imply for this one, e.g. an anime style argues
against `woman`); sharing it across topics is what lets rare topics borrow strength from
common ones. Saved as ``.npz``,
``.json`` and LightGBM text; never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from twinengine.capability.tagging.features import (
    Doc,
    Tfidf,
    item_features,
    topic_features,
    tuple_params,
)
from twinengine.errors import MissingDependency, ModelFitError, NotFound

BLOCKS: dict[str, tuple[str, dict[str, Any]]] = {
    # name: (text field, vectoriser params)
    "word_full": ("full", {"ngram_range": (1, 2), "max_features": 50000}),
    "char_head": ("head", {"analyzer": "char_wb", "ngram_range": (2, 5), "max_features": 80000}),
    "word_head": ("head", {"ngram_range": (1, 2), "max_features": 30000}),
}
# Kernel-ridge views: weights of the TF-IDF blocks and of "emb" / "item". The first is the main
# score; the others let level 2 weigh the summary against the prompt body per topic.
VIEWS: dict[str, dict[str, float]] = {
    "all": {"emb": 1.0, "item": 1.0, "word_full": 1.0, "char_head": 1.0, "word_head": 1.0,
            "emb_rbf": 1.0},
    "head": {"emb": 1.0, "char_head": 1.0, "word_head": 1.0},
    "body": {"word_full": 1.0, "item": 1.0},
    "rbf": {"emb_rbf": 1.0},
}
# exp((cos - 1) / tau): a local, non-linear similarity of the head embeddings (5-fold CV, seed 0:
# micro-F1 0.7096 -> 0.7124 with it in "all" and as its own view).
EMB_RBF_TAU = 0.1
COOC_ALPHA = 5.0  # smoothing of P(topic | other topic) towards the prior
TOPIC_CUE_WEIGHT = 1.0
RIDGE_LAMBDA = 1.0
KNN_K = 15
KNN_POWER = 4.0
MAX_TOPICS = 8  # the guidelines' ceiling
INNER_REPEATS = 2  # inner CV splits that make level-2 rows (CV seed 0: 0.7124 -> 0.7148)
FORMAT = 3


def _norm_rows(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(n, 1e-9)


@dataclass
class Inputs:
    """Featurised docs."""

    sparse: dict[str, sp.csr_matrix]
    emb: np.ndarray
    item: np.ndarray  # row-normalised structural cues
    cues: np.ndarray  # (n, 4, topics)
    raw_item: np.ndarray


@dataclass
class TaggerModel:
    """A trained tagger for one taxonomy."""

    topic_ids: list[str]
    facets: list[str]
    keywords: list[list[str]]
    tfidf: dict[str, Tfidf] = field(default_factory=dict)
    train: Inputs | None = None
    y: np.ndarray | None = None
    dual: np.ndarray | None = None  # (views, n, topics)
    mu: np.ndarray | None = None
    prior: np.ndarray | None = None
    cond: np.ndarray | None = None  # P(topic j | topic k) at [j, k], smoothed
    kdiag: np.ndarray | None = None  # training rows' self-similarity in the "all" view
    topic_emb: np.ndarray | None = None
    booster: Any = None
    threshold: float = 0.35  # best micro-F1 in 5-fold CV on the 500 bundled labels
    info: dict[str, Any] = field(default_factory=dict)

    # --- features ----------------------------------------------------------------------------
    def featurise(self, docs: list[Doc], emb: np.ndarray, *, fit: bool = False) -> Inputs:
        """Turn docs (and their head embeddings) into model inputs."""
        sparse = {}
        for name, (fld, params) in BLOCKS.items():
            texts = [getattr(d, fld) for d in docs]
            if fit:
                self.tfidf[name] = Tfidf(**params)
                sparse[name] = self.tfidf[name].fit_transform(texts)
            else:
                sparse[name] = self.tfidf[name].transform(texts)
        raw = item_features(docs)
        cues = topic_features(docs, self.topic_ids, self.keywords)
        flat_cues = cues.reshape(len(docs), -1)
        item = _norm_rows(np.hstack([raw, flat_cues * TOPIC_CUE_WEIGHT]))
        return Inputs(sparse=sparse, emb=emb.astype(np.float32), item=item, cues=cues, raw_item=raw)

    @staticmethod
    def blocks(a: Inputs, b: Inputs) -> dict[str, np.ndarray]:
        """Linear kernels between two featurised sets, one per block."""
        out = {"emb": a.emb @ b.emb.T, "item": a.item @ b.item.T}
        for name in BLOCKS:
            out[name] = (a.sparse[name] @ b.sparse[name].T).toarray()
        out = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
        out["emb_rbf"] = np.exp((out["emb"] - 1.0) / EMB_RBF_TAU)
        return out

    @staticmethod
    def self_blocks(a: Inputs) -> dict[str, np.ndarray]:
        """Each row's kernel with itself, per block (the diagonal of ``blocks(a, a)``)."""
        out = {
            "emb": (a.emb.astype(np.float64) ** 2).sum(1),
            "item": (a.item.astype(np.float64) ** 2).sum(1),
        }
        for name in BLOCKS:
            out[name] = np.asarray(a.sparse[name].multiply(a.sparse[name]).sum(1)).ravel()
        out["emb_rbf"] = np.exp((out["emb"] - 1.0) / EMB_RBF_TAU)
        return out

    @staticmethod
    def view(kb: dict[str, np.ndarray], name: str) -> np.ndarray:
        """One view's kernel: the weighted sum of its blocks."""
        return sum(w * kb[k] for k, w in VIEWS[name].items())

    # --- level 1 ---------------------------------------------------------------------------
    @staticmethod
    def _ridge(k_train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = y.mean(0)
        dual = np.linalg.solve(k_train + RIDGE_LAMBDA * np.eye(len(k_train)), y - mu)
        return dual, mu

    @staticmethod
    def _knn(sim: np.ndarray, y: np.ndarray) -> np.ndarray:
        k = min(KNN_K, sim.shape[1])
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sim, idx, 1), 0) ** KNN_POWER
        return np.einsum("nk,nkt->nt", w, y[idx]) / (w.sum(1, keepdims=True) + 1e-9)

    def _cooc(self, ridge: np.ndarray) -> list[np.ndarray]:
        """What the other topics' level-1 scores imply for each topic, and facet competition."""
        assert self.cond is not None and self.prior is not None
        rp = np.clip(ridge, 0, 1)
        expect = (rp @ self.cond.T) / (rp.sum(1, keepdims=True) + 1e-6)
        names = sorted(set(self.facets))
        facet_ix = np.array([names.index(f) for f in self.facets])
        rival = np.zeros_like(ridge)  # the best other topic of the same facet
        for f in range(len(names)):
            cols = np.flatnonzero(facet_ix == f)
            if len(cols) < 2:
                continue
            sub = ridge[:, cols]
            top2 = np.sort(sub, 1)[:, -2:]
            rival[:, cols] = np.where(sub >= top2[:, [1]], top2[:, [0]], top2[:, [1]])
        total = rp.sum(1, keepdims=True)
        t = ridge.shape[1]
        return [
            expect,
            expect - self.prior[None, :],
            rival,
            np.tile(total, (1, t)),
            np.tile((ridge > 0.3).sum(1, keepdims=True), (1, t)),
            ridge / (total + 1e-6),
        ]

    def _level1(
        self, kb: dict[str, np.ndarray], x: Inputs, tr: np.ndarray, te: np.ndarray, y: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Out-of-fold level-1 scores of rows ``te`` from a ridge fitted on rows ``tr``."""
        views = []
        for name in VIEWS:
            k = self.view(kb, name)
            dual, mu = self._ridge(k[np.ix_(tr, tr)], y[tr])
            views.append(k[np.ix_(te, tr)] @ dual + mu)
        knn = self._knn(x.emb[te] @ x.emb[tr].T, y[tr])
        k0 = self.view(kb, "all")
        diag = np.diag(k0)
        knn_all = self._knn(k0[np.ix_(te, tr)] / np.sqrt(np.outer(diag[te], diag[tr])), y[tr])
        return views, knn, knn_all, mu

    def _labels_stats(self, y: np.ndarray) -> None:
        self.prior = y.mean(0)
        self.cond = (y.T @ y + COOC_ALPHA * self.prior[:, None]) / (y.sum(0)[None, :] + COOC_ALPHA)

    def _pairs(
        self,
        x: Inputs,
        rows: np.ndarray,
        views: list[np.ndarray],
        knn: np.ndarray,
        knn_all: np.ndarray,
        mu: np.ndarray,
    ) -> np.ndarray:
        """Level-2 rows, one per (item, topic): shape (n * topics, features)."""
        ridge = views[0]
        n, t = ridge.shape
        assert self.topic_emb is not None
        zs = x.emb[rows] @ self.topic_emb.T
        rank = np.argsort(np.argsort(-ridge, 1), 1)
        names = sorted(set(self.facets))
        facet_ix = np.array([names.index(f) for f in self.facets])
        cues = x.cues[rows]
        raw = x.raw_item[rows]
        item_cols = [raw[:, 0], raw[:, 3], raw[:, 4:7].max(1), cues[:, 0].sum(1)]
        feats = [
            ridge,
            knn,
            cues[:, 0],
            cues[:, 1],
            cues[:, 2],
            cues[:, 3],
            zs,
            np.tile(np.log(mu + 1e-3), (n, 1)),
            rank,
            np.tile(facet_ix, (n, 1)),
            ridge - ridge.max(1, keepdims=True),
            np.tile(np.arange(t), (n, 1)),
            *[np.tile(c[:, None], (1, t)) for c in item_cols],
            *views[1:],
            knn_all,
            *self._cooc(ridge),
        ]
        return np.stack(feats, -1).reshape(n * t, -1).astype(np.float32)

    CATEGORICAL = [9, 11]  # facet index, topic index

    # --- training ------------------------------------------------------------------------------
    def fit(
        self, docs: list[Doc], emb: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0
    ) -> TaggerModel:
        """Train both levels on labelled docs (``y``: n x topics, 0/1)."""
        try:
            import lightgbm as lgb
        except ImportError as exc:
            raise MissingDependency("lightgbm", "tagging") from exc
        if len(docs) < 2 * folds:
            raise ModelFitError(f"need at least {2 * folds} labelled items, got {len(docs)}")
        if not y.any():
            raise ModelFitError("the labels name no topic of this taxonomy")
        x = self.featurise(docs, emb, fit=True)
        kb = self.blocks(x, x)
        yf = y.astype(np.float64)
        # Level-2 rows come from out-of-fold level-1 scores, as at prediction time.
        # Several inner splits give level 2 more (and less split-dependent) rows to learn from.
        rng = np.random.default_rng(seed)
        parts, labels = [], []
        for _ in range(INNER_REPEATS):
            order = rng.permutation(len(docs))
            for f in range(folds):
                te = np.sort(order[f::folds])
                tr = np.setdiff1d(order, te)
                self._labels_stats(yf[tr])  # co-occurrence from the inner training part only
                views, knn, knn_all, mu = self._level1(kb, x, tr, te, yf)
                parts.append(self._pairs(x, te, views, knn, knn_all, mu))
                labels.append(y[te].reshape(-1))
        pairs = np.concatenate(parts)
        self.booster = lgb.train(
            {
                "objective": "binary",
                "learning_rate": 0.05,
                "num_leaves": 15,
                "min_data_in_leaf": 20,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "feature_fraction": 0.8,
                "verbose": -1,
                "num_threads": 2,
                "seed": seed,
            },
            lgb.Dataset(pairs, label=np.concatenate(labels), categorical_feature=self.CATEGORICAL),
            num_boost_round=300,
        )
        self._labels_stats(yf)
        duals = []
        for name in VIEWS:
            dual, self.mu = self._ridge(self.view(kb, name), yf)
            duals.append(dual)
        self.dual = np.stack(duals)
        self.kdiag = np.diag(self.view(kb, "all")).copy()
        self.train, self.y = x, yf
        return self

    # --- prediction ----------------------------------------------------------------------------
    def predict_proba(self, docs: list[Doc], emb: np.ndarray) -> np.ndarray:
        """P(topic | item) for each doc: (n, topics)."""
        if self.train is None or self.booster is None or self.y is None or self.dual is None:
            raise NotFound("the tagger is not trained")
        if not docs:
            return np.zeros((0, len(self.topic_ids)))
        x = self.featurise(docs, emb)
        out = np.zeros((len(docs), len(self.topic_ids)))
        for start in range(0, len(docs), 1000):  # bounded memory on the whole catalog
            rows = np.arange(start, min(start + 1000, len(docs)))
            sub = Inputs(
                {k: v[rows] for k, v in x.sparse.items()},
                x.emb[rows],
                x.item[rows],
                x.cues[rows],
                x.raw_item[rows],
            )
            kb = self.blocks(sub, self.train)
            views = [
                self.view(kb, name) @ d + self.mu for name, d in zip(VIEWS, self.dual, strict=True)
            ]
            knn = self._knn(sub.emb @ self.train.emb.T, self.y)
            own = self.self_blocks(sub)
            own_all = sum(w * own[k] for k, w in VIEWS["all"].items())
            sim_all = self.view(kb, "all") / np.sqrt(np.outer(own_all, self.kdiag))
            knn_all = self._knn(sim_all, self.y)
            pairs = self._pairs(sub, np.arange(len(rows)), views, knn, knn_all, self.mu)
            out[rows] = self.booster.predict(pairs).reshape(len(rows), -1)
        return out

    def decide(self, proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """0/1 tags: above the threshold, at most ``MAX_TOPICS``, at least one."""
        th = self.threshold if threshold is None else threshold
        d = proba >= th
        order = np.argsort(-proba, 1)
        for n in range(len(proba)):
            if d[n].sum() > MAX_TOPICS:
                d[n] = False
                d[n, order[n, :MAX_TOPICS]] = True
            if not d[n].any() and proba.shape[1]:
                d[n, order[n, 0]] = True
        return d

    # --- persistence ---------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``model.npz``, ``model.json`` and ``meta.txt`` (LightGBM text) to ``folder``."""
        if self.train is None or self.booster is None:
            raise NotFound("nothing to save: the tagger is not trained")
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "y": self.y,
            "dual": self.dual,
            "mu": self.mu,
            "topic_emb": self.topic_emb,
            "prior": self.prior,
            "cond": self.cond,
            "kdiag": self.kdiag,
            "emb": self.train.emb,
            "item": self.train.item,
            "cues": self.train.cues,
            "raw_item": self.train.raw_item,
        }
        for name, m in self.train.sparse.items():
            arrays[f"{name}_data"], arrays[f"{name}_indices"] = m.data, m.indices
            arrays[f"{name}_indptr"] = m.indptr
            arrays[f"{name}_shape"] = np.array(m.shape)
            arrays.update(self.tfidf[name].state(name))
        tmp = folder / "model.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        (folder / "meta.tmp.txt").write_text(self.booster.model_to_string())
        meta = {
            "format": FORMAT,
            "topic_ids": self.topic_ids,
            "facets": self.facets,
            "keywords": self.keywords,
            "threshold": self.threshold,
            "info": self.info,
            "blocks": {k: v[1] for k, v in BLOCKS.items()},
            "views": VIEWS,
        }
        (folder / "model.tmp.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        # Renames last, so a reader never sees half a model.
        tmp.replace(folder / "model.npz")
        (folder / "meta.tmp.txt").replace(folder / "meta.txt")
        (folder / "model.tmp.json").replace(folder / "model.json")

    @classmethod
    def load(cls, folder: Path) -> TaggerModel:
        """Read a model written by ``save``."""
        if not (folder / "model.json").exists():
            raise NotFound(f"no trained tagger in {folder}: run `twinengine tag train LABELS`")
        import lightgbm as lgb

        meta = json.loads((folder / "model.json").read_text())
        if meta.get("format") != FORMAT or meta.get("views") != VIEWS:
            raise NotFound(f"the tagger in {folder} is of an older format: train it again")
        model = cls(
            topic_ids=meta["topic_ids"],
            facets=meta["facets"],
            keywords=meta["keywords"],
            threshold=meta["threshold"],
            info=meta["info"],
        )
        with np.load(folder / "model.npz", allow_pickle=False) as z:
            sparse = {}
            for name in BLOCKS:
                sparse[name] = sp.csr_matrix(
                    (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
                    shape=tuple(z[f"{name}_shape"]),
                )
                model.tfidf[name] = Tfidf.from_state(tuple_params(meta["blocks"][name]), z, name)
            model.train = Inputs(sparse, z["emb"], z["item"], z["cues"], z["raw_item"])
            model.y, model.dual, model.mu = z["y"], z["dual"], z["mu"]
            model.topic_emb = z["topic_emb"]
            model.prior, model.cond, model.kdiag = z["prior"], z["cond"], z["kdiag"]
        model.booster = lgb.Booster(model_str=(folder / "meta.txt").read_text())
        return model
