"""Markdown tables of the cost benchmark: every figure ours / plain nnU-Net's, marked against the goals of issue 10
(which later issues must keep)."""

from typing import Dict, List, Sequence

GOALS = {"time": 1.05, "prediction": 1.10, "memory": 1.10, "diagnosis branch": 1.10}


def ratio_cell(ours: float, plain: float, goal: str = "") -> str:
    ratio = ours / plain
    mark = "" if not goal else (" ok" if ratio <= GOALS[goal] else " **missed**")
    return f"{ratio:.3f}x{mark}"


def markdown_table(header: Sequence[str], rows: List[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def mib(value: float) -> str:
    return f"{value / 2 ** 20:.0f} MiB"


def training_table(figures: Dict[str, dict], plain: str) -> str:
    """``figures``: trainer -> {"seconds": {batch: s}, "parameters", "saved_bytes", "peak_bytes"}."""
    batches = sorted(figures[plain]["seconds"])
    header = ["network", *[f"fwd+bwd batch {b}" for b in batches], "parameters", "saved activations",
              "training peak memory"]
    rows = [[plain + " (plain)", *[f"{figures[plain]['seconds'][b]:.2f} s" for b in batches],
             f"{figures[plain]['parameters'] / 1e6:.2f} M", mib(figures[plain]["saved_bytes"]),
             mib(figures[plain]["peak_bytes"])]]
    for trainer, values in figures.items():
        if trainer == plain:
            continue
        rows.append([trainer, *[f"{values['seconds'][b]:.2f} s, " + ratio_cell(values["seconds"][b],
                                                                           figures[plain]["seconds"][b], "time")
                                for b in batches],
                     ratio_cell(values["parameters"], figures[plain]["parameters"]),
                     ratio_cell(values["saved_bytes"], figures[plain]["saved_bytes"]),
                     ratio_cell(values["peak_bytes"], figures[plain]["peak_bytes"], "memory")])
    return markdown_table(header, rows)


def prediction_table(figures: Dict[str, dict], plain: str, goal: str) -> str:
    """``figures``: name -> medians of the fields of :class:`~benchmarks.costs.prediction.PredictionRun`."""
    header = ["model", "s / case", "s / case after start-up", "start-up", "prediction peak memory"]
    base = figures[plain]
    rows = [[plain + " (reference)", f"{base['seconds_per_case']:.2f} s",
             f"{base['seconds_per_case_after_start_up']:.2f} s", f"{base['start_up_seconds']:.1f} s",
             mib(base["peak_bytes"])]]
    for name, values in figures.items():
        if name != plain:
            rows.append([name, f"{values['seconds_per_case']:.2f} s, "
                         + ratio_cell(values["seconds_per_case"], base["seconds_per_case"], goal),
                         f"{values['seconds_per_case_after_start_up']:.2f} s, "
                         + ratio_cell(values["seconds_per_case_after_start_up"],
                                      base["seconds_per_case_after_start_up"], goal),
                         f"{values['start_up_seconds']:.1f} s",
                         ratio_cell(values["peak_bytes"], base["peak_bytes"], "memory")])
    return markdown_table(header, rows)


def inductor_table(results: Dict[tuple, object]) -> str:
    """``results``: (trainer, configuration) -> :class:`~benchmarks.costs.inductor.InductorResult`."""
    rows = [[trainer, configuration, "ok" if r.ok else "**failed**",
             f"{r.max_relative_difference:.1e}" if r.ok else r.error, f"{r.seconds:.0f} s"]
            for (trainer, configuration), r in results.items()]
    return markdown_table(["network", "plans", "inductor", "max abs(compiled - eager) / max abs(eager)",
                           "compile + step (inductor's disk cache kept)"],
                          rows)
