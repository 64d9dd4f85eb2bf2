"""Aggregation and agreement on real crowdsourced answers with gold, in one run.

- Labels (truth_infer_crowd: dog, duck, face, product; Zheng et al., PVLDB 2017):
  ``gristmill.annotate.aggregate`` with majority vote, Dawid-Skene, GLAD and MACE
  (crowd-kit underneath); accuracy against gold, seconds, and the ratio of
  Dawid-Skene's accuracy to majority vote's. Krippendorff's alpha per dataset, timed
  against NLTK's ``AnnotationTask.alpha`` (the peer) on the same answers.
- Numbers (truth_infer_crowd emotion, -100..100): mean vs median per item, mean
  absolute error against gold.
- Free text (crowdwsa2019: crowd translations, the original English as gold): the
  medoid answer vs the most frequent answer, crowd-kit's ROVER and a random worker's
  answer, scored by corpus BLEU (sacrebleu) and mean token F1 against gold.

    .venv/bin/python bench/aggregate.py                 # everything (~2 minutes)
    .venv/bin/python bench/aggregate.py --quick         # no GLAD/MACE on product
"""

from __future__ import annotations

import argparse
import random
import time
import warnings
from pathlib import Path

import pandas as pd

from gristmill.annotate.aggregate import aggregate, token_f1
from gristmill.annotate.agreement import agreement, krippendorff_alpha

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
LABEL_SETS = ("dog", "duck", "face", "product")
METHODS = ("majority", "dawid_skene", "glad", "mace")


def load_labels(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    folder = SAMPLES / "truth_infer_crowd" / name
    raw = pd.read_csv(folder / "answer.csv", dtype=str)
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    answers = pd.DataFrame(
        {"record_id": raw["question"], "annotator": raw["worker"], "value": raw["answer"]}
    )
    return answers, dict(zip(truth["question"], truth["truth"], strict=True))


def accuracy(result: pd.DataFrame, gold: dict[str, str]) -> float:
    hits = [
        gold[r] == v for r, v in zip(result["record_id"], result["value"], strict=True) if r in gold
    ]
    return sum(hits) / len(hits)


def bench_labels(quick: bool) -> None:
    print("labels: accuracy against gold (seconds)")
    print(
        f"{'dataset':<9}{'answers':>8}{'items':>7}"
        + "".join(f"{m:>20}" for m in METHODS)
        + f"{'DS/MV':>8}"
    )
    for name in LABEL_SETS:
        answers, gold = load_labels(name)
        labels = sorted(set(answers["value"]))
        question = {"name": name, "kind": "label", "labels": labels}
        cells, acc = [], {}
        for method in METHODS:
            if quick and name == "product" and method in ("glad", "mace"):
                cells.append(f"{'skipped':>20}")
                continue
            start = time.perf_counter()
            result = aggregate(question, answers, method)
            seconds = time.perf_counter() - start
            acc[method] = accuracy(result, gold)
            cells.append(f"{acc[method]:>12.4f} ({seconds:5.1f})")
        ratio = acc["dawid_skene"] / acc["majority"]
        print(
            f"{name:<9}{len(answers):>8}{answers['record_id'].nunique():>7}"
            + "".join(cells)
            + f"{ratio:>8.3f}"
        )


def bench_alpha() -> None:
    from nltk.metrics.agreement import AnnotationTask

    print("\nKrippendorff's alpha (nominal): gristmill vs NLTK on the same answers")
    print(
        f"{'dataset':<9}{'alpha':>8}{'gristmill s':>13}{'nltk alpha':>12}{'nltk s':>9}{'speed-up':>10}"
    )
    for name in ("duck", "dog", "product"):
        answers, _ = load_labels(name)
        frame = answers.rename(columns={"record_id": "unit"})
        start = time.perf_counter()
        ours = krippendorff_alpha(frame, "nominal")
        mine = time.perf_counter() - start
        start = time.perf_counter()  # both timed from the same long table
        task = AnnotationTask(data=[(a, r, v) for r, a, v in answers.itertuples(index=False)])
        theirs = task.alpha()
        peer = time.perf_counter() - start
        print(f"{name:<9}{ours:>8.4f}{mine:>13.3f}{theirs:>12.4f}{peer:>9.3f}{peer / mine:>9.2f}x")
    answers, _ = load_labels("product")
    question = {"name": "product", "kind": "label", "labels": sorted(set(answers["value"]))}
    start = time.perf_counter()
    result = agreement(question, answers)
    print(
        f"agreement() on product (alpha, Fleiss, Cohen per pair): "
        f"{time.perf_counter() - start:.2f} s, {len(result.cohen_kappa)} annotator pairs"
    )


def bench_numbers() -> None:
    folder = SAMPLES / "truth_infer_crowd" / "emotion"
    raw = pd.read_csv(folder / "answer.csv")
    truth = pd.read_csv(folder / "truth.csv")
    gold = dict(zip(truth["question"].astype(str), truth["truth"], strict=True))
    answers = pd.DataFrame(
        {
            "record_id": raw["question"].astype(str),
            "annotator": raw["worker"],
            "value": [{"valence": float(v)} for v in raw["answer"]],
        }
    )
    question = {
        "name": "emotion",
        "kind": "rating",
        "dimensions": [{"name": "valence", "min": -100, "max": 100}],
    }
    print("\nnumbers (emotion, -100..100): mean absolute error against gold")
    for method in ("mean", "median"):
        result = aggregate(question, answers, method)
        errors = [
            abs(v["valence"] - gold[r])
            for r, v in zip(result["record_id"], result["value"], strict=True)
        ]
        print(f"  {method:<7}{sum(errors) / len(errors):8.2f}")
    frame = pd.DataFrame(
        {"unit": raw["question"], "annotator": raw["worker"], "value": raw["answer"]}
    )
    print(f"  interval alpha {krippendorff_alpha(frame, 'interval'):.3f}")


def bench_text() -> None:
    import sacrebleu
    from crowdkit.aggregation import ROVER

    print("\nfree text (crowdwsa2019 translations): BLEU / mean token F1 against gold")
    print(
        f"{'set':<5}{'medoid':>16}{'majority':>16}{'ROVER':>16}{'random worker':>16}{'medoid s':>10}"
    )
    for part in ("J1", "T1", "T2"):
        folder = SAMPLES / "crowdwsa2019"
        raw = pd.read_csv(folder / f"CrowdWSA2019_{part}_label_anonymous.tsv", sep="\t", dtype=str)
        truth = pd.read_csv(folder / f"CrowdWSA2019_{part}_gt.tsv", sep="\t", dtype=str)
        gold = dict(zip(truth["sentence"], truth["trueanswer"], strict=True))
        # some workers answered an item more than once; the app keeps one submitted
        # answer per record and annotator, so the first is kept here too
        raw = raw.dropna().drop_duplicates(["worker", "sentence"])
        answers = pd.DataFrame(
            {"record_id": raw["sentence"], "annotator": raw["worker"], "value": raw["workeranswer"]}
        )
        question = {"name": "translation", "kind": "text", "mode": "write"}
        start = time.perf_counter()
        medoid = aggregate(question, answers, "medoid")
        seconds = time.perf_counter() - start
        majority = aggregate(question, answers, "majority")
        rover = ROVER(tokenizer=lambda s: s.split(" "), detokenizer=lambda t: " ".join(t))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rovered = rover.fit_predict(
                pd.DataFrame(
                    {"task": raw["sentence"], "worker": raw["worker"], "text": raw["workeranswer"]}
                )
            )
        rng = random.Random(0)
        picked = {
            str(rid): rng.choice(list(group["value"]))
            for rid, group in answers.groupby("record_id", sort=True)
        }

        def score(pred: dict[str, str], gold: dict[str, str] = gold) -> str:
            ids = [r for r in pred if r in gold]
            bleu = sacrebleu.corpus_bleu([pred[r] for r in ids], [[gold[r] for r in ids]]).score
            f1 = sum(token_f1(gold[r], pred[r]) for r in ids) / len(ids)
            return f"{bleu:7.2f} / {f1:.3f}"

        print(
            f"{part:<5}{score(dict(zip(medoid['record_id'], medoid['value'], strict=True))):>16}"
            f"{score(dict(zip(majority['record_id'], majority['value'], strict=True))):>16}"
            f"{score({str(k): str(v) for k, v in rovered.items()}):>16}"
            f"{score(picked):>16}{seconds:>10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip GLAD and MACE on product")
    args = parser.parse_args()
    import crowdkit.aggregation  # noqa: F401  (imported before the clocks start)

    bench_labels(args.quick)
    bench_alpha()
    bench_numbers()
    bench_text()


if __name__ == "__main__":
    main()
