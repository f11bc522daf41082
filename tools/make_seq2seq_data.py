#!/usr/bin/env python3
"""Write a small generated data set for examples/lstm_seq2seq.kdl.

The Keras example translates English sentences to French one character at a time; this
task is the same shape, generated rather than downloaded: a number written in digits
("307") to its digits as French words ("trois zero sept"). Encoded as the Keras example
encodes its sentences:

- `encoder_inputs` (n, longest input, 71): one-hot input characters, padded with spaces;
- `decoder_inputs` (n, longest target + 2, 93): "\\t" + target + "\\n", one-hot, padded
  with spaces (the "teacher forcing" input);
- `decoder_outputs`: the same shifted left by one step (the character to predict next).

Characters are numbered in sorted order (as the example's `input_token_index` does); the
model's 71 and 93 token slots leave the rest unused. Samples are drawn with
`numpy.random.default_rng(seed)`, so a seed gives the same file.

Usage::

    python tools/make_seq2seq_data.py -o seq2seq.npz [--samples 2000] [--digits 3]
    ktrans train examples/lstm_seq2seq.kdl --data seq2seq.npz --epochs 5

Run-time dependencies: numpy and the standard library.
"""

from __future__ import annotations

import argparse

import numpy as np

WORDS = ("zero", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf")
ENCODER_TOKENS, DECODER_TOKENS = 71, 93  # the sizes examples/lstm_seq2seq.kdl declares


def pairs(samples: int, digits: int, seed: int) -> list[tuple[str, str]]:
    """(input text, target text) pairs: 1 to `digits` digits and their French words."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        length = int(rng.integers(1, digits + 1))
        text = "".join(str(d) for d in rng.integers(0, 10, length))
        out.append((text, " ".join(WORDS[int(c)] for c in text)))
    return out


def one_hot(texts: list[str], length: int, tokens: int, index: dict[str, int]) -> np.ndarray:
    """Keras's encoding: one character per step, the steps after the text are spaces."""
    data = np.zeros((len(texts), length, tokens), np.float32)
    for i, text in enumerate(texts):
        padded = text + " " * (length - len(text))
        data[i, np.arange(length), [index[c] for c in padded]] = 1.0
    return data


def make(samples: int = 2000, digits: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """The three arrays of the data set."""
    data = pairs(samples, digits, seed)
    inputs = [a for a, _ in data]
    targets = ["\t" + b + "\n" for _, b in data]
    in_chars = sorted(set("".join(inputs)) | {" "})
    out_chars = sorted(set("".join(targets)) | {" "})
    in_index = {c: i for i, c in enumerate(in_chars)}
    out_index = {c: i for i, c in enumerate(out_chars)}
    in_len = max(map(len, inputs))
    out_len = max(map(len, targets))
    decoder_inputs = one_hot(targets, out_len, DECODER_TOKENS, out_index)
    decoder_outputs = np.zeros_like(decoder_inputs)
    decoder_outputs[:, :-1] = decoder_inputs[:, 1:]
    decoder_outputs[:, -1, out_index[" "]] = 1.0
    return {
        "encoder_inputs": one_hot(inputs, in_len, ENCODER_TOKENS, in_index),
        "decoder_inputs": decoder_inputs,
        "decoder_outputs": decoder_outputs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--digits", type=int, default=3, help="at most this many digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    arrays = make(args.samples, args.digits, args.seed)
    np.savez_compressed(args.output, **arrays)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.output}: {shapes}")


if __name__ == "__main__":
    main()
