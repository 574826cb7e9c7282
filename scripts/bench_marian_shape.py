"""CPU cost of back-translation with a model of the real OPUS-MT shape (issue #4's GPU estimate).

    OMP_NUM_THREADS=1 python scripts/bench_marian_shape.py

A randomly initialised MarianMTModel with the configuration of Helsinki-NLP/opus-mt-en-de (74M
parameters; no download) samples 40 new tokens for 32 source rows of 40 tokens: the time per
decoding step and the sentences per second of one translation direction on one CPU thread.
"""
import time

import torch
from transformers import MarianConfig, MarianMTModel

torch.set_num_threads(1)
torch.manual_seed(0)
# the shape of Helsinki-NLP/opus-mt-en-de (config.json: d_model 512, 6+6 layers, 8 heads, ffn 2048, vocab 58101)
cfg = MarianConfig(vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                   decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
                   pad_token_id=58100, eos_token_id=0, decoder_start_token_id=58100)
model = MarianMTModel(cfg).eval()
print("params", sum(p.numel() for p in model.parameters()) / 1e6)
ids = torch.randint(1, 58000, (32, 40))
with torch.no_grad():
    model.generate(input_ids=ids[:2], max_new_tokens=4, min_new_tokens=4, do_sample=True)
    t = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, min_new_tokens=40, do_sample=True, temperature=0.9)
    dt = time.perf_counter() - t
print(f"batch 32 x 40 src tokens, 40 new tokens: {dt:.2f} s -> {32/dt:.1f} sentences/s one direction, {dt/40*1000:.1f} ms per decoding step")
