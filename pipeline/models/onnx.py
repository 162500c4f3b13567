"""Transformer prediction without torch: the exported ONNX graph run by ONNX Runtime, tokenized by `tokenizers`.

pipeline.models.kobert exports the graph when it trains (and scores with it, so every reported metric is this
path's); `load_model` gives a saved transformer directory to OnnxKobert, so `predict` never imports torch.
"""

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.calibration import softmax
from pipeline.cli import UserError
from pipeline.config import KobertConfig
from pipeline.models.base import NO_INPUTS, FitInputs, TopicModel

GRAPH_FILE = "model.onnx"
PAD = 1  # KoBERT's [PAD] id (pipeline.models.kobert.SPECIALS)


class OnnxRunner:
    """Batched class probabilities from an ONNX graph with inputs input_ids, attention_mask and output logits."""

    def __init__(self, graph: bytes | Path, tokenizer_json: str, max_length: int, batch_size: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.graph = graph if isinstance(graph, bytes) else str(graph)
        self.session = ort.InferenceSession(self.graph, providers=["CPUExecutionProvider"])
        self.inherited: list = []
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        self.batch_size = batch_size

    def in_worker(self, threads: int) -> None:
        """A session of its own for a forked worker. The inherited one is kept, never run or freed: its thread
        pool stayed in the parent, and freeing it would wait for those threads."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.inherited.append(self.session)
        self.session = ort.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Batches of similar length, so padding stays short."""
        encoded = [e.ids for e in self.tokenizer.encode_batch_fast(list(texts))]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        out = np.zeros((len(texts), self.session.get_outputs()[0].shape[-1]), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            lengths = np.array([len(encoded[i]) for i in idx])
            mask = (np.arange(lengths.max()) < lengths[:, None]).astype(np.int64)  # by length, as in training
            ids = np.full(mask.shape, PAD, dtype=np.int64)
            ids[mask == 1] = np.concatenate([encoded[i] for i in idx])
            out[idx] = softmax(self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0])
        return out


class OnnxKobert(TopicModel):
    """A saved transformer for prediction only (training is pipeline.models.kobert.KobertModel's)."""

    kind = "kobert"
    # Several single-threaded ONNX Runtime processes beat one process using every core (less
    # synchronisation, and one worker's Python work overlaps another's graph)
    fork_safe = True
    files_read = (GRAPH_FILE, "hf/tokenizer.json")

    @classmethod
    def config_class(cls) -> type:
        return KobertConfig

    def in_worker(self, threads: int) -> None:
        self.runner.in_worker(threads)

    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> "OnnxKobert":
        raise UserError("a loaded transformer predicts only: train with `python -m pipeline.train --model kobert`")

    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        return self.runner.proba(self.texts(titles))

    def _save_weights(self, model_dir: Path) -> None:
        """A copy of the files it was loaded from (an ensemble saves its members this way)."""
        shutil.copyfile(self.source / GRAPH_FILE, model_dir / GRAPH_FILE)
        shutil.copytree(self.source / "hf", model_dir / "hf", dirs_exist_ok=True)

    def _load_weights(self, model_dir: Path) -> None:
        if not (model_dir / GRAPH_FILE).is_file():
            raise ValueError(f"no {GRAPH_FILE} (saved by an older version): retrain it (make train-kobert)")
        self.source = model_dir
        tokenizer_json = (model_dir / "hf" / "tokenizer.json").read_text(encoding="utf-8")
        self.runner = OnnxRunner(model_dir / GRAPH_FILE, tokenizer_json, self.config.max_length,
                                 self.config.predict_batch_size)
        width = self.runner.session.get_outputs()[0].shape[-1]
        if width != len(self.labels):
            raise ValueError(f"the graph answers {width} classes for {len(self.labels)} labels")
