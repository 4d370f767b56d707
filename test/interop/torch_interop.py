#!/usr/bin/env python3
"""PyTorch side of the safetensors round trip (run by test/interop/safetensors.test.ts).

Reads and writes safetensors by hand (8-byte little-endian header length, JSON header, raw
little-endian data), because Debian's python3-torch 1.13 ships without the `safetensors` package.

  torch_interop.py check <model.safetensors> <io.json>
      Builds the torch.nn.Sequential described by the file's "edgegrad.modules" metadata, loads
      the tensors with load_state_dict(strict=True), predicts io.json's x in eval mode and exits
      non-zero unless every output is within 1e-5 of io.json's pred (edgegrad's predictions).
  torch_interop.py train <out.safetensors> <io.json>
      Trains a Linear-BatchNorm1d-ReLU-Linear MLP (seeded, 30 SGD steps), then writes its
      state_dict to out.safetensors and {x, pred} (eval-mode predictions) to io.json.
"""
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, h in header.items():
        dtype, size = DTYPES[h["dtype"]]
        a, b = h["data_offsets"]
        buf = bytearray(raw[base + a : base + b])
        t = torch.frombuffer(buf, dtype=dtype) if b > a else torch.zeros(0, dtype=dtype)
        tensors[name] = t.reshape(h["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, chunks, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        code = "I64" if t.dtype == torch.int64 else "F32"
        data = t.to(torch.int64 if code == "I64" else torch.float32).numpy().tobytes()  # little-endian on every CI host
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    hj = json.dumps(header).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(chunks))


def build(modules):
    layers = []
    for m in modules:
        kind = m[0]
        if kind == "Linear":
            layers.append(nn.Linear(m[1], m[2]))
        elif kind == "BatchNorm1d":
            layers.append(nn.BatchNorm1d(m[1], eps=m[2], momentum=m[3]))
        elif kind == "Dropout":
            layers.append(nn.Dropout(m[1]))
        elif kind == "LeakyReLU":
            layers.append(nn.LeakyReLU(m[1]))
        else:
            layers.append(getattr(nn, kind)())
    return nn.Sequential(*layers)


def check(st_path, io_path):
    tensors, meta = read_safetensors(st_path)
    model = build(json.loads(meta["edgegrad.modules"]))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    io = json.load(open(io_path))
    x = torch.tensor(io["x"], dtype=torch.float32).reshape(io["rows"], -1)
    with torch.no_grad():
        pred = model(x).reshape(-1)
    want = torch.tensor(io["pred"], dtype=torch.float32)
    diff = (pred - want).abs().max().item()
    print(json.dumps({"maxAbsDiff": diff, "outputs": pred.numel()}))
    return 0 if diff <= 1e-5 else 1


def train(st_path, io_path):
    torch.manual_seed(1234)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(64, 6)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    model.train()
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    xt = torch.randn(20, 6)
    with torch.no_grad():
        pred = model(xt).reshape(-1)
    write_safetensors(st_path, model.state_dict(), {"format": "pt"})
    json.dump({"rows": 20, "x": xt.reshape(-1).tolist(), "pred": pred.tolist()}, open(io_path, "w"))
    return 0


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    sys.exit(check(a, b) if cmd == "check" else train(a, b))
