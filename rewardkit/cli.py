"""The `rewardkit` command: validate, check, audit, schema, verifiers, train, warmstart, export.

Exit codes: 0 ok, 1 invalid input (a spec or samples with problems; an audit finding; a training run stopped by a
failing reward), 2 usage, 3 `check` scored every line but some cells errored (the summary on stderr
says which rewards and why), 130 Ctrl-C (`train` saves a checkpoint first; a second Ctrl-C stops at once)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rewardkit import __version__
from rewardkit.errors import GroupFieldError, RewardkitError, SpecError

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_CELL_ERRORS = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except RewardkitError as exc:  # every error rewardkit raises on purpose: its message is complete
        _say(str(exc) if isinstance(exc, SpecError) else f"error: {exc}")
        return EXIT_USAGE if isinstance(exc, GroupFieldError) else EXIT_INVALID
    except FileNotFoundError as exc:
        _say(f"error: {exc}")
        return EXIT_INVALID
    except KeyboardInterrupt as exc:  # a graceful stop has said where it saved; a hard one says so here
        if type(exc) is KeyboardInterrupt:
            _say("interrupted")
        return EXIT_INTERRUPTED


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _say(text: str) -> None:
    """A message to stderr, printed literally: it may quote a path, a value or model output."""
    _err().print(text, markup=False, highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rewardkit", description="Multi-reward RL from one YAML spec.")
    parser.add_argument("--version", action="version", version=f"rewardkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files; report every problem with its place")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.set_defaults(func=_validate)

    p = sub.add_parser("check", help="score sample completions and compare GRPO and GDPO advantages")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("samples", metavar="SAMPLES.jsonl")
    p.add_argument("--format", choices=("table", "json"), default=None,
                   help="table (the default on a terminal) or json (the default when piped)")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--group-by", default=None, metavar="FIELD",
                   help="samples with equal values of FIELD form a rollout group (default: prompt; a "
                   "field given here that no sample has is an error)")
    p.add_argument("--tokenizer", metavar="PATH",
                   help="tokenizer.json (or a folder with one) for token lengths, e.g. the policy's")
    p.add_argument("--remote", metavar="URL", help="score on a `rewardkit serve` server instead of here "
                   "(token from $REWARDKIT_TOKEN)")
    p.add_argument("--engine", choices=("rewardkit", "trl", "verl", "nemo_rl"),
                   help="add the GDPO advantages this engine computes (verl: token lengths with --tokenizer)")
    p.set_defaults(func=_check)

    p = sub.add_parser("audit", help="probe the spec with adversarial completions; exit 1 if one earns a reward "
                       "it should not")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("samples", metavar="SAMPLES.jsonl", nargs="?",
                   help="samples with reference fields and honest completions (needed unless --list)")
    p.add_argument("--threshold", default="pass,median", metavar="RULES",
                   help="what counts as a finding, comma-separated: pass (a reward at its pass level), median "
                   "(a total above the honest samples' median), max (above the prompt's best honest total); "
                   "default pass,median")
    p.add_argument("--probes", metavar="NAMES", help="run only these probes (comma-separated names)")
    p.add_argument("--tokenizer", metavar="PATH", help="tokenizer.json for token lengths, as for check")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--list", action="store_true", help="list the probes and exit")
    p.set_defaults(func=_audit)

    p = sub.add_parser("serve", help="serve the spec over HTTP: /score, OpenRLHF /get_reward, NeMo-Gym /verify "
                       "(needs rewardkit[serve])")
    from rewardkit.serve.settings import add_arguments

    add_arguments(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser("schema", help="print the JSON Schema of spec files (for editor completion)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=_schema)

    p = sub.add_parser("verifiers", help="list the available verifiers and their arguments, or show one")
    p.add_argument("name", nargs="?", metavar="NAME", help="show only this verifier, with its whole description")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_verifiers)

    p = sub.add_parser("train", help="train a policy from the spec's train: section (needs rewardkit[train])")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--resume", metavar="CHECKPOINT_DIR", help="continue from a checkpoint directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a train: field, e.g. --set steps=20 (repeatable)")
    p.set_defaults(func=_train)

    p = sub.add_parser("warmstart", help="supervised warm start on demonstrations before RL (needs rewardkit[train])")
    p.add_argument("spec", metavar="SPEC", help="its train: section says how prompts are rendered")
    p.add_argument("--data", required=True, metavar="FILE.jsonl", help="rows with the prompt and a demonstration")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to save the warm-started model to")
    p.add_argument("--from", dest="from_model", metavar="MODEL", help="model to start from (default: train.model)")
    p.add_argument("--target-field", default="completion", help="row field holding the demonstration")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_warmstart)

    p = sub.add_parser("sample", help="generate completions from a model or checkpoint, for `check` "
                       "(needs rewardkit[train])")
    p.add_argument("model", metavar="MODEL_OR_CHECKPOINT",
                   help="a model folder or hub id, a checkpoint folder, or a run folder (its newest checkpoint)")
    p.add_argument("--data", required=True, metavar="FILE", help="prompts: .jsonl or .parquet rows")
    p.add_argument("--n", type=int, default=4, metavar="K", help="completions per prompt (default 4)")
    p.add_argument("--output", "-o", required=True, metavar="SAMPLES.jsonl")
    p.add_argument("--spec", metavar="SPEC", help="render prompts and sample with this spec's train: settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a train: setting, e.g. --set max_new_tokens=256 (repeatable)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.set_defaults(func=_sample)

    p = sub.add_parser("export", help="write a trained policy in the form another tool loads")
    export = p.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    p = export.add_parser("merged", help="one transformers save_pretrained folder (LoRA adapters merged in)")
    p.add_argument("run", metavar="RUN", help="a run folder (its newest checkpoint) or a checkpoint folder")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--base", metavar="MODEL", help="base model of a LoRA run, when it moved since training")
    p.set_defaults(func=_export_merged)
    p = export.add_parser("verl", help="the Hydra overrides that train verl on this spec, ready to paste")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--batch", action="store_true", help="score each reward worker's chunk in one call")
    p.add_argument("--remote", metavar="URL", help="score on this `rewardkit serve` of the spec")
    p.set_defaults(func=_export_verl)
    p = export.add_parser("verl-data", help="a JSONL data file in verl's parquet layout")
    p.add_argument("data", metavar="DATA.jsonl")
    p.add_argument("--output", "-o", required=True, metavar="FILE.parquet")
    p.add_argument("--spec", metavar="SPEC", help="names data_source and the reference field for ground_truth")
    p.add_argument("--prompt-field", default="prompt", metavar="FIELD")
    p.set_defaults(func=_export_verl_data)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from rewardkit.spec import load_spec

    status = EXIT_OK
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            _say(str(exc))
            status = EXIT_INVALID
            continue
        print(f"{path}: ok ({len(spec.rewards)} rewards: {', '.join(spec.reward_names)}; "
              f"advantage {spec.config.advantage.method})")
        spec.close()
    return status


def _check(args: argparse.Namespace) -> int:
    from rewardkit.check import run_check
    from rewardkit.spec import load_spec
    from rewardkit.verifier import ScoringContext

    ctx = ScoringContext()
    if args.tokenizer:
        from rewardkit.verifiers.length_limit import load_tokenizer_file

        ctx.tokenizer = load_tokenizer_file(args.tokenizer)
    spec = load_spec(args.spec)
    try:
        if args.remote:
            from rewardkit.client import RewardClient

            spec = RewardClient(args.remote).scoring_for(spec)  # type: ignore[assignment]
        with open(args.samples, encoding="utf-8", errors="replace") as handle:
            report = run_check(spec, handle, group_by=args.group_by or "prompt", ctx=ctx,
                               require_group_field=args.group_by is not None, engine=args.engine)
    finally:
        spec.close()
    fmt = "json" if args.json else args.format or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _render_check(report, Console())
    for bad in report.bad_lines:
        _say(f"{args.samples}:{bad.line}: {bad.error}")
    errored = report.error_reasons()
    for name, reasons in errored.items():
        top = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
        _say(f"error: reward {name!r} errored on {sum(reasons.values())} of {len(report.rows)} samples: {top}")
    if report.bad_lines:
        return EXIT_INVALID
    return EXIT_CELL_ERRORS if errored else EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from rewardkit.audit import all_probes, run_audit
    from rewardkit.check import read_samples
    from rewardkit.spec import load_spec
    from rewardkit.verifier import ScoringContext

    probes = all_probes()
    if args.list:
        for probe in probes:
            print(f"{probe.name:<22} {probe.family:<10} {probe.hack:<24} {probe.description}")
        return EXIT_OK
    if not args.samples:
        _say("error: audit needs SAMPLES.jsonl (or --list)")
        return EXIT_USAGE
    if args.probes:
        wanted = [n.strip() for n in args.probes.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {p.name for p in probes})
        if unknown:
            available = ", ".join(p.name for p in probes)
            _say(f"error: --probes: unknown probe(s) {', '.join(unknown)}; available: {available}")
            return EXIT_USAGE
        probes = [p for p in probes if p.name in wanted]
    ctx = ScoringContext()
    if args.tokenizer:
        from rewardkit.verifiers.length_limit import load_tokenizer_file

        ctx.tokenizer = load_tokenizer_file(args.tokenizer)
    spec = load_spec(args.spec)
    try:
        with open(args.samples, encoding="utf-8", errors="replace") as handle:
            rows, bad = read_samples(handle, group_by="prompt")
        for line in bad:
            _say(f"{args.samples}:{line.line}: {line.error}")
        if bad or not rows:
            if not rows:
                _say(f"error: {args.samples}: no samples")
            return EXIT_INVALID
        rules = [r.strip() for r in args.threshold.split(",") if r.strip()]
        try:
            report = run_audit(spec, [r.sample for r in rows], rules, ctx, probes)
        except ValueError as exc:
            _say(f"error: --threshold: {exc}")
            return EXIT_USAGE
    finally:
        spec.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _render_audit(report, Console())
    return EXIT_INVALID if report.open_findings else EXIT_OK


def _render_audit(report: Any, console: Console) -> None:
    """Findings first (model-like text printed literally), then what every probe earned."""
    open_, accepted = report.open_findings, [f for f in report.findings if f.accepted]
    console.print(Text(f"audit of {report.spec}: {len(open_)} finding(s), {len(accepted)} accepted; "
                       f"rules {','.join(report.rules)}; honest median total {report.honest_median:.3g}; "
                       f"{report.seconds:.1f} s"))
    if report.findings:
        table = Table(title="findings", show_lines=True)
        for col in ("probe (hack)", "variant", "sample", "earned", "total / honest", "status"):
            table.add_column(col)
        for f in sorted(report.findings, key=lambda f: (f.accepted is not None, f.probe)):
            earned = "\n".join(f"{e.reward}={e.value:.3g}: {e.reason}" for e in f.earned) or "-"
            table.add_row(Text(f"{f.probe} ({f.hack})"), Text(f.variant), Text(f.prompt),
                          Text(earned), Text(f"{f.total:.3g} / {f.honest_total:.3g} ({f.rule})"),
                          Text("accepted: " + f.accepted if f.accepted else "FINDING"))
        console.print(table)
    summary = Table(title="probes")
    for col in ("probe", "family", "hack", "completions", "best total", "rewards passed"):
        summary.add_column(col)
    for p in report.probes:
        if p.completions:
            summary.add_row(p.probe, p.family, p.hack, str(p.completions), f"{p.best_total:.3g}",
                            ", ".join(sorted(p.passed)) or "-")
    console.print(summary)
    for entry in report.unused_accepts:
        console.print(Text(f"note: audit accept entry {entry} matched no finding"))
    for reward, n in report.errors.items():
        console.print(Text(f"note: reward {reward!r} could not judge {n} probe completion(s)"))


def _serve(args: argparse.Namespace) -> int:
    from rewardkit.serve.settings import settings_from_args

    try:
        from rewardkit.serve import serve
        settings = settings_from_args(args)
        return serve(settings)
    except ImportError as exc:
        _err().print(f"serving needs fastapi and uvicorn: pip install 'rewardkit[serve]' ({exc})", markup=False)
        return EXIT_INVALID
    except ValueError as exc:  # a bad option value, e.g. --token-env naming an unset variable
        if isinstance(exc, RewardkitError):
            raise
        _err().print(f"error: {exc}", markup=False, highlight=False)
        return EXIT_USAGE


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def _render_check(report: Any, console: Console) -> None:
    from rewardkit.verifier import completion_text

    methods = list(report.advantages)  # the compared methods, in their columns' order
    table = report.table
    method = report.spec.config.advantage.method
    # Every piece of text goes in as rich `Text`, never as markup: reasons quote model output, and a
    # completion holding `[red]` or `:x:` must print as written.
    scores = Table(title=Text(f"{report.spec.config.name}: {len(report.rows)} samples"), show_lines=False)
    scores.add_column("line", justify="right", no_wrap=True)
    scores.add_column("group", no_wrap=True)
    scores.add_column("completion", max_width=40, overflow="fold")  # long words wrap, never vanish
    for name, weight in zip(table.reward_names, report.spec.weights, strict=True):
        scores.add_column(Text(f"{name} (w={weight:g})"))
    for m in methods:
        scores.add_column(f"{m.upper()} adv" + (" *" if m == method else ""), justify="right", no_wrap=True)
    groups_seen: dict[str, int] = {}
    for i, row in enumerate(report.rows):
        group_label = groups_seen.setdefault(row.group, len(groups_seen) + 1)
        cells = []
        for cell in table.cells[i]:
            mark = ("error ", "red") if cell.error else ("", "")  # a gated cell's reason says "gated: ..."
            cells.append(Text.assemble(mark, (_fmt(cell.value), "bold"), " ", (_clip(cell.reason), "dim")))
        advs = [_fmt(report.advantages[m][i]) for m in methods]
        completion = Text(_clip(completion_text(row.sample).replace("\n", "⏎ "), 60), style="italic")
        scores.add_row(str(row.line), f"g{group_label}", completion, *cells, *advs,
                       end_section=_last_of_group(report.rows, i))
    console.print(scores)
    summary = Table(title="summary (* = the spec's method)")
    for col in ("reward", "mean", "pass rate", "errors", "gated"):
        summary.add_column(col)
    for s in table.summary():
        summary.add_row(Text(s.name), _fmt(s.mean), _fmt(s.pass_rate), str(s.errors), f"{s.gated}/{s.count}")
    console.print(summary)
    distinct = ", ".join(f"{m.upper()} {report.distinct(m)}" for m in methods)
    console.print(f"distinct advantage values: {distinct}; groups: {len(groups_seen)}"
                  + (f"; malformed lines: {len(report.bad_lines)}" if report.bad_lines else ""), markup=False)


def _last_of_group(rows: list[Any], i: int) -> bool:
    return i + 1 == len(rows) or rows[i + 1].group != rows[i].group


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _schema(args: argparse.Namespace) -> int:
    from rewardkit.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return EXIT_OK


def _verifiers(args: argparse.Namespace) -> int:
    from rewardkit.schema import verifier_docs

    docs = verifier_docs(args.name)
    if args.json or not sys.stdout.isatty():
        print(json.dumps(docs, indent=2))
        return EXIT_OK
    console = Console(highlight=False)
    for name, info in docs.items():  # plugin docs are printed as written, never as markup
        console.print(Text.assemble((name, "bold"), "  ", (info["path"], "dim")))
        if info.get("error"):
            console.print(Text.assemble("  ", ("unavailable:", "red"), f" {info['error']}"))
            continue
        text = info["description"] if args.name else info["doc"]
        console.print(Text("\n".join(f"  {line}" for line in text.splitlines())))
        for arg in info["args"]:
            default = "" if arg["required"] else f" = {arg['default']!r}"
            console.print(Text.assemble("    ", (arg["name"], "cyan"), f": {arg['type']}{default}  ",
                                        (arg["description"], "dim")))
    return EXIT_OK


def _overrides(items: list[str]) -> dict[str, Any] | None:
    """`--set KEY=VALUE` pairs, values read as YAML; None (after saying why) when one is malformed."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _say(f"--set expects KEY=VALUE, got {item!r}")
            return None
        overrides[key] = _parse_value(value)
    return overrides


def _sample(args: argparse.Namespace) -> int:
    overrides = _overrides(args.overrides)
    if overrides is None:
        return EXIT_USAGE
    try:
        from rewardkit.trainers.sample import sample
    except ImportError as exc:
        _say(f"sampling needs torch and transformers: pip install 'rewardkit[train]' ({exc})")
        return EXIT_INVALID
    out = sample(args.model, args.data, args.n, args.output, spec_path=args.spec, overrides=overrides,
                 limit=args.limit, seed=args.seed, greedy=args.greedy)
    _say(f"wrote {out}; score it with: rewardkit check SPEC {out}")
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    overrides = _overrides(args.overrides)
    if overrides is None:
        return EXIT_USAGE
    try:
        from rewardkit.trainers.gdpo import train
    except ImportError as exc:
        _say(f"training needs torch and transformers: pip install 'rewardkit[train]' ({exc})")
        return EXIT_INVALID
    train(args.spec, resume=args.resume, overrides=overrides)
    return EXIT_OK


def _export_merged(args: argparse.Namespace) -> int:
    try:
        from rewardkit.trainers.export import export_merged
    except ImportError as exc:
        _say(f"export needs torch and transformers: pip install 'rewardkit[train]' ({exc})")
        return EXIT_INVALID
    print(export_merged(args.run, args.output, base=args.base))
    return EXIT_OK


def _export_verl(args: argparse.Namespace) -> int:
    from rewardkit.integrations.verl_export import verl_overrides
    from rewardkit.spec import load_spec

    with load_spec(args.spec) as spec:
        print("python -m verl.trainer.main_ppo \\\n  " + " \\\n  ".join(
            f"'{line}'" for line in verl_overrides(spec, args.spec, batch=args.batch, remote=args.remote)))
    return EXIT_OK


def _export_verl_data(args: argparse.Namespace) -> int:
    from rewardkit.integrations.verl_export import verl_rows, write_verl_parquet
    from rewardkit.spec import load_spec
    from rewardkit.train_inputs import load_rows

    spec = load_spec(args.spec) if args.spec else None
    try:
        rows = verl_rows(load_rows(Path(args.data)), spec, args.prompt_field, source=args.data)
        print(f"{write_verl_parquet(rows, args.output)}: {len(rows)} rows")
    except (KeyError, ImportError) as exc:
        _err().print(f"error: {exc}", markup=False, highlight=False)
        return EXIT_INVALID
    finally:
        if spec is not None:
            spec.close()
    return EXIT_OK


def _warmstart(args: argparse.Namespace) -> int:
    try:
        from rewardkit.trainers.data import TrainSetupError
        from rewardkit.trainers.sft import WarmStartSettings, warm_start_spec
    except ImportError as exc:
        _say(f"the warm start needs torch and transformers: pip install 'rewardkit[train]' ({exc})")
        return EXIT_INVALID
    settings = WarmStartSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 target_field=args.target_field)
    try:
        out = warm_start_spec(args.spec, args.data, args.out, args.from_model, settings)
    except TrainSetupError as exc:
        _say(f"error: {exc}")
        return EXIT_INVALID
    print(f"warm-started model written to {out}")
    return EXIT_OK


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


if __name__ == "__main__":
    sys.exit(main())
