#!/usr/bin/env python3
"""Write a tiny random-weight llama GGUF for the real-server kit (conformance/run-kit.mjs).

Architecture llama, 2 layers, 64 wide, f32: llama-server loads it in well under a second and
generates thousands of tokens/s on a CPU, so its queueing (--parallel N) is what the scenarios see.
Tokenizer metadata comes from llama.cpp's own models/ggml-vocab-llama-spm.gguf, so prompts are
tokenized for real. Usage: make-model.py LLAMA_SRC OUT.gguf  (gguf-py is taken from LLAMA_SRC).
"""
import os
import sys

src, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, 'gguf-py'))
import numpy as np  # noqa: E402
import gguf  # noqa: E402

vocab = gguf.GGUFReader(os.path.join(src, 'models', 'ggml-vocab-llama-spm.gguf'))


def field(name):
    f = vocab.fields[name]
    if hasattr(f, 'contents'):
        return f.contents()
    parts = [f.parts[i] for i in f.data]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(p).decode('utf-8') for p in parts]
        return [p.tolist()[0] for p in parts]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(parts[0]).decode('utf-8')
    return parts[0].tolist()[0]


tokens = field('tokenizer.ggml.tokens')
n_vocab, n_embd, n_ff, n_head, n_layer = len(tokens), 64, 128, 4, 2
w = gguf.GGUFWriter(out, 'llama')
w.add_name('shardline-kit-tiny-random')
w.add_block_count(n_layer)
w.add_context_length(4096)
w.add_embedding_length(n_embd)
w.add_feed_forward_length(n_ff)
w.add_head_count(n_head)
w.add_head_count_kv(n_head)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_dimension_count(n_embd // n_head)
w.add_file_type(gguf.LlamaFileType.ALL_F32)
w.add_vocab_size(n_vocab)
w.add_tokenizer_model('llama')
w.add_tokenizer_pre('default')
w.add_token_list(tokens)
w.add_token_scores(field('tokenizer.ggml.scores'))
w.add_token_types(field('tokenizer.ggml.token_type'))
w.add_bos_token_id(field('tokenizer.ggml.bos_token_id'))
w.add_eos_token_id(field('tokenizer.ggml.eos_token_id'))
w.add_unk_token_id(field('tokenizer.ggml.unknown_token_id'))
w.add_add_bos_token(True)
w.add_add_eos_token(False)
w.add_chat_template(
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

rng = np.random.default_rng(1)


def t(name, *shape):
    w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))


t('token_embd.weight', n_vocab, n_embd)
w.add_tensor('output_norm.weight', np.ones(n_embd, dtype=np.float32))
t('output.weight', n_vocab, n_embd)
for i in range(n_layer):
    w.add_tensor(f'blk.{i}.attn_norm.weight', np.ones(n_embd, dtype=np.float32))
    w.add_tensor(f'blk.{i}.ffn_norm.weight', np.ones(n_embd, dtype=np.float32))
    for n in ('attn_q', 'attn_k', 'attn_v', 'attn_output'):
        t(f'blk.{i}.{n}.weight', n_embd, n_embd)
    t(f'blk.{i}.ffn_gate.weight', n_ff, n_embd)
    t(f'blk.{i}.ffn_up.weight', n_ff, n_embd)
    t(f'blk.{i}.ffn_down.weight', n_embd, n_ff)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(out)
