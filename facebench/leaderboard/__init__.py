"""The leaderboard: one row per detector per benchmark, from the results store plus published reference rows.

Sections per benchmark (WIDER easy/medium/hard AP, FDDB discrete/continuous TPR at 1000 FP, AFW AP, PASCAL AP),
each sorted by its headline metric, with ms/image for runs that were timed. Rows are `run` (made by
`facebench run`), `evaluated` (third-party prediction files scored by facebench) or `published` (published
curves or baseline files: "published, not run"). Rendered as Markdown, CSV or a static HTML page that shows the
tables and the PR/ROC overlay figures (embedded as data URIs, or as PNG files beside the page).

Results with per-image records beside them (X.records.npz next to X.json) show the 95% bootstrap interval of
each headline metric, and results of one comparison group (same benchmark, ground truth, protocol and scoring
settings) are ranked by paired bootstrap on the sort metric: rows sharing a rank "=k" are statistically tied.
Other rows (published, or results without records) keep their plain position rank.

Results on different ground truth are never ranked in one table: each benchmark has one table per ground truth
(ground_truth_sha256). The main table is the one on the ground truth its published reference rows are scored on
(when they record it: the AFW/PASCAL baselines); otherwise, among the results' ground truths, the one covering
the most images (counts.images), then the newest `ground_truth_version`, then the one most entries use. WIDER's
official curves and FDDB's ROC files record no ground truth and belong to the main table. Every other ground
truth gets its own table, titled with its short sha256 and image count and ranked only among itself, plus a
warning. Evaluated results are one entry per name and scored predictions (store.StoredResult.entry_id): two
prediction folders of one name are two rows, told apart by the nearest path component in which they differ.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from facebench.leaderboard.render import (render_csv, render_figures, render_html, render_markdown,
                                          write_leaderboard)
from facebench.leaderboard.rows import (BENCHMARK_ORDER, DEFAULT_SORT, FAMILY_COLUMNS, Leaderboard, Row, Section,
                                        common_images, gt_label, other_columns, rows_from_references,
                                        rows_from_results, sort_rows, source_tags, split_by_ground_truth)
from facebench.leaderboard.statistics import (ResultStatistics, comparison_key, statistical_ranks,
                                              with_statistics)
from facebench.store import StoredResult

__all__ = ["DEFAULT_SORT", "Leaderboard", "Row", "Section", "build_leaderboard", "comparison_key", "render_csv",
           "render_figures", "render_html", "render_markdown", "source_tags", "write_leaderboard"]


def build_leaderboard(results: Iterable[StoredResult], references: Iterable[Any] = (),
                      sort: str | None = None, benchmarks: Sequence[str] | None = None, *,
                      ci: bool | None = None, resamples: int | None = None, seed: int | None = None) -> Leaderboard:
    """Sections per benchmark (known ones first) and ground truth (main one first, see main_ground_truth), rows
    sorted by the headline metric (or `sort`); a warning for each table on another ground truth.

    ci: None (default) = intervals and tie ranks for results with records beside them (or a stored `ci95`);
    False = none; True = as None, with a warning when no result has records.
    """
    if benchmarks:
        results = [r for r in results if r.benchmark in benchmarks]
        references = [r for r in references if r.benchmark in benchmarks]
    results = list(results)
    rows, warnings = rows_from_results(results)
    rows += rows_from_references(references)
    stats = ResultStatistics(resamples, seed) if ci is not False else None
    by_benchmark: dict[str, list[Row]] = {}
    for row in rows:
        by_benchmark.setdefault(row.benchmark, []).append(row)
    ordered = [b for b in BENCHMARK_ORDER if b in by_benchmark] + sorted(b for b in by_benchmark
                                                                         if b not in BENCHMARK_ORDER)
    sections = []
    for benchmark in ordered:
        items = by_benchmark[benchmark]
        family = items[0].family
        columns = FAMILY_COLUMNS.get(family) or other_columns(items)
        keys = [c[0] for c in columns]
        sort_key = sort if sort in keys else DEFAULT_SORT.get(family, keys[0] if keys else "")
        tables = split_by_ground_truth(items)
        main_gt, main_images = tables[0][0], common_images(tables[0][1])
        for index, (gt, members) in enumerate(tables):
            is_main = index == 0
            if stats is not None:
                members = with_statistics(members, keys, stats)
            sorted_rows = sort_rows(members, sort_key)
            ranks = statistical_ranks(sorted_rows, sort_key, stats) if stats is not None else ()
            images = common_images(members)
            sections.append(Section(benchmark, family, columns, sort_key, sorted_rows, ranks,
                                    ground_truth_sha256=gt, main=is_main, split=len(tables) > 1, images=images,
                                    main_ground_truth_sha256=None if is_main else main_gt))
            if not is_main:
                n_results = sum(r.kind != "published" for r in members)
                n_published = len(members) - n_results
                with_published = f" (with {n_published} published row{'s' * (n_published != 1)})" \
                    if n_published else ""
                warnings.append(f"{benchmark}: {n_results} result{'s' * (n_results != 1)}{with_published} on "
                                f"ground truth {gt_label(gt, images)}, not the main table's "
                                f"{gt_label(main_gt, main_images)}; listed in a separate table, not ranked with it")
    if stats is not None:
        warnings += stats.warnings
        if ci and results and not any(r.has_records for s in sections for r in s.rows):
            warnings.append("--ci: no result has per-image records beside it (X.records.npz next to X.json); "
                            "re-run `facebench eval ... --out` to write them")
    return Leaderboard(tuple(sections), tuple(warnings), stats.resamples if stats is not None else None)
