"""Dense retrieval: an encoder with query/passage prompts, and a FAISS index over passage embeddings."""

from lexdr.dense.encoder import Encoder, EncoderConfig
from lexdr.dense.index import DenseIndex, DenseIndexConfig, IndexType, ShardedDenseIndex, open_dense_index
from lexdr.dense.retriever import DenseRetriever, encoder_for_index
from lexdr.dense.stage import (DenseConfig, DenseIndexInputs, DenseInputs, build_dense_index, dense_index_stage,
                               dense_search, dense_stage)

__all__ = ["Encoder", "EncoderConfig", "DenseIndex", "DenseIndexConfig", "IndexType", "ShardedDenseIndex", "open_dense_index", "DenseRetriever", "encoder_for_index", "build_dense_index", "dense_search", "DenseConfig", "DenseIndexInputs", "dense_index_stage", "DenseInputs",
           "dense_stage"]
