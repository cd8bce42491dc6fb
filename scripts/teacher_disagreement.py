"""Where does the teacher disagree with the student on the student's own samples? (after a default run)

    python scripts/teacher_disagreement.py                       # data/06_models/{student_init,selected_teacher}
    python scripts/teacher_disagreement.py --temperature 0.6 --prompts 64 --out data/08_reporting/disagreement.csv

Samples ``--group-size`` responses per RL prompt from the student, scores every response token under both models
at the sampling temperature, and prints the token-level means (log-probs, their gap, the exact reverse KL, the share
of tokens the teacher rejects) and the tokens a reverse-KL term pushes hardest on, with what the teacher would have
written there instead (rl_distill.evaluation.teacher_disagreement).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
import torch

from rl_distill.engine.scoring import score_frozen
from rl_distill.evaluation.teacher_disagreement import disagreement_table, overall, summarise_disagreement
from rl_distill.models.factory import check_shared_vocab, load_model_dir
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, default=Path("data/06_models/student_init"))
    parser.add_argument("--teacher", type=Path, default=Path("data/06_models/selected_teacher"))
    parser.add_argument("--prompts-file", type=Path, default=Path("data/05_model_input/rl_prompts.parquet"))
    parser.add_argument("--prompts", type=int, default=32, help="how many prompts (the file's first ones)")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--reject-below", type=float, default=-5.0, help="log pi_T below this counts as rejected")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=12, help="token rows to print")
    parser.add_argument("--out", type=Path, default=None, help="write the per-token table here (csv)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    student, tokenizer = load_model_dir(args.student)
    teacher, teacher_tokenizer = load_model_dir(args.teacher)
    check_shared_vocab(teacher_tokenizer, tokenizer)
    prompts = pl.read_parquet(args.prompts_file)["prompt"].head(args.prompts).to_list()
    cfg = RolloutConfig(group_size=args.group_size, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    with torch.no_grad():
        batch = build_rollout_engine(cfg).generate(student, tokenizer, prompts, cfg, with_logprobs=False)
    vocab = len(tokenizer)
    _, student_logits = score_frozen(student, batch, temperature=args.temperature, with_logits=True, vocab_size=vocab)
    _, teacher_logits = score_frozen(teacher, batch, temperature=args.temperature, with_logits=True, vocab_size=vocab)
    tokens = disagreement_table(batch.response_ids, batch.response_mask, student_logits, teacher_logits, tokenizer)
    print(f"{len(prompts)} prompts x {args.group_size} samples at temperature {args.temperature}:")
    for name, value in overall(tokens, args.reject_below).items():
        print(f"  {name}: {value:.3f}")
    with pl.Config(tbl_rows=args.top, tbl_cols=-1, float_precision=3, tbl_width_chars=160):
        print(summarise_disagreement(tokens, args.reject_below).head(args.top))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tokens.write_csv(args.out)
        print(f"per-token table: {args.out}")


if __name__ == "__main__":
    main()
