"""Maximum-overlap-sum matching of faces and detections per image at every unique score (protocols.md §2.5)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from protocols.fddb.detections import FddbDetections
from protocols.fddb.ground_truth import FddbGroundTruth
from protocols.fddb.overlaps import PairOverlaps


DBL_MAX = sys.float_info.max


@dataclass(frozen=True, eq=False)
class ImageEntries:
    """The per-image results (§2.5): image i owns entries start[i]:start[i+1], thresholds ascending."""

    start: np.ndarray
    threshold: np.ndarray
    valid: np.ndarray  # detections with score >= threshold
    tp_cont: np.ndarray
    tp_disc: np.ndarray
    faces: np.ndarray  # per image: N

    @property
    def fp(self) -> np.ndarray:
        """False positives per entry: valid detections minus discrete true positives."""
        return self.valid - self.tp_disc

    @property
    def image(self) -> np.ndarray:
        """Image index of every entry."""
        return np.repeat(np.arange(len(self.start) - 1), np.diff(self.start))


def hungarian_counts(matrix: np.ndarray) -> tuple[float, int]:
    """(sum of matched overlaps, matched pairs above 0.5) of the maximum-sum assignment, official orientation."""
    from scipy.optimize import linear_sum_assignment

    if matrix.size == 0:
        return 0.0, 0
    if matrix.shape[0] > matrix.shape[1]:  # the official solver needs rows <= columns
        matrix = matrix.T
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    total, above = 0.0, 0
    for value in matrix[rows, cols].tolist():  # row order, as the official sums its match pairs
        if value > 0:
            total += value
            above += value > 0.5
    return total, above


def _conflict_entries(faces: list[int], ranks: list[int], det_ids: list[int], values: list[float],
                      valid_counts: list[int]) -> list[tuple[float, int]]:
    """(TP_cont, TP_disc) of one image at the given numbers of valid detections (ascending), by adding
    detections in rank order and re-solving only the connected component each one joins.

    The maximum-sum assignment of the filtered matrix is the union of its components' optima (entries across
    components are 0). A component with one face or one detection takes its largest overlap; larger ones go
    to scipy's Hungarian method (faces as rows unless they outnumber the detections, columns in file order).
    """
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(node):
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    members: dict[tuple[str, int], list[tuple[int, int, float]]] = {}  # root -> edges (face, det id, value)
    solved: dict[tuple[str, int], tuple[float, int]] = {}
    total_cont, total_disc = 0.0, 0
    out: list[tuple[float, int]] = []
    if any(b < a for a, b in zip(valid_counts, valid_counts[1:])):
        raise ValueError("valid counts must ascend")
    targets = iter(valid_counts)
    target = next(targets, None)
    k, n_edges = 0, len(ranks)
    rank = 0
    while target is not None:
        # add detection `rank` with all its edges
        det_node = ("d", rank)
        edges = []
        while k < n_edges and ranks[k] == rank:
            edges.append((faces[k], det_ids[k], values[k]))
            k += 1
        if edges:
            roots = {find(("f", f)) for f, _, _ in edges}
            merged = list(edges)
            for root in roots:
                merged.extend(members.pop(root, ()))
                old = solved.pop(root, None)
                if old is not None:
                    total_cont -= old[0]
                    total_disc -= old[1]
            for root in roots:
                parent[root] = det_node
            members[det_node] = merged
            value = _component_optimum(merged)
            solved[det_node] = value
            total_cont += value[0]
            total_disc += value[1]
        rank += 1
        while target is not None and rank == target:
            out.append((total_cont, total_disc))
            target = next(targets, None)
    return out


def _component_optimum(edges: list[tuple[int, int, float]]) -> tuple[float, int]:
    """(sum of matched overlaps, pairs above 0.5) of one connected component's maximum-sum assignment."""
    face_ids = sorted({f for f, _, _ in edges})
    det_ids = sorted({d for _, d, _ in edges})
    if len(face_ids) == 1 or len(det_ids) == 1:  # a star: its largest overlap (ties give equal counts)
        best = max(v for _, _, v in edges)
        return best, int(best > 0.5)
    fi = {f: i for i, f in enumerate(face_ids)}
    di = {d: j for j, d in enumerate(det_ids)}
    dense = np.zeros((len(face_ids), len(det_ids)))
    for f, d, v in edges:
        dense[fi[f], di[d]] = v
    return hungarian_counts(dense)


def filtered_matrix(dense: np.ndarray, valid_cols: np.ndarray) -> np.ndarray:
    """The official Hungarian input: faces and valid detections with a non-zero overlap sum."""
    sub = dense[:, valid_cols]
    rows = sub.sum(axis=1) != 0
    cols = sub.sum(axis=0) != 0
    return sub[rows][:, cols]


def image_entries(gt: FddbGroundTruth, dets: FddbDetections, overlaps: PairOverlaps,
                  chunk_instances: int = 4_000_000) -> ImageEntries:
    """Every image's result at each of its unique scores (ascending), matching re-solved per threshold.

    Vectorised: a threshold's valid detections are a prefix of the image's detections by descending score,
    so its overlap graph is a prefix of the image's edges sorted by that rank. Where every connected
    component of that graph is a star (one face or one detection at the centre), the maximum-sum assignment
    takes each star's largest overlap (ties cannot change the counts). Thresholds with a larger component
    are solved per image by adding detections in score order and re-solving only the component each one
    joins, with scipy's Hungarian method. (Like the official libhungarian, any exact tie between optimal
    assignments is broken by the solver; only ties that change the count of pairs above 0.5 could matter.)
    """
    n_img = gt.n_images
    nd = np.diff(dets.det_start)
    det_image = np.repeat(np.arange(n_img), nd)
    scores = dets.scores
    # Detections by image, then descending score (stable); rank = position within the image.
    order = np.lexsort((np.arange(dets.count), -scores, det_image))
    rank = np.empty(dets.count, dtype=np.int64)
    rank[order] = np.arange(dets.count) - dets.det_start[det_image[order]]
    sorted_scores = scores[order]
    # Thresholds: the distinct scores; valid count = last position of that score in descending order + 1.
    last_of_group = np.ones(dets.count, dtype=bool)
    same_next = (det_image[order][1:] == det_image[order][:-1]) & (sorted_scores[1:] == sorted_scores[:-1])
    last_of_group[:-1] = ~same_next
    g_pos = np.nonzero(last_of_group)[0]
    g_img = det_image[order][g_pos]
    g_valid = g_pos - dets.det_start[g_img] + 1
    g_thr = sorted_scores[g_pos]
    # Entries ascending threshold within each image = descending valid count; images without detections
    # get the single DBL_MAX entry.
    empty = np.nonzero(nd == 0)[0]
    e_img = np.concatenate([g_img, empty])
    e_valid = np.concatenate([g_valid, np.zeros(len(empty), dtype=np.int64)])
    e_thr = np.concatenate([g_thr, np.full(len(empty), DBL_MAX)])
    final = np.lexsort((-e_valid, e_img))
    e_img, e_valid, e_thr = e_img[final], e_valid[final], e_thr[final]
    n_entries = len(e_img)
    tp_cont = np.zeros(n_entries)
    tp_disc = np.zeros(n_entries, dtype=np.int64)

    # Edges of each image sorted by detection rank.
    face_local = overlaps.face - gt.face_start[det_image[overlaps.det]]
    e_rank = rank[overlaps.det]
    edge_img = det_image[overlaps.det]
    eo = np.lexsort((face_local, e_rank, edge_img))
    ed_img, ed_face, ed_det, ed_rank, ed_val = (edge_img[eo], face_local[eo], overlaps.det[eo], e_rank[eo],
                                                overlaps.score[eo])
    n_edges = len(eo)
    edge_start = np.searchsorted(ed_img, np.arange(n_img + 1), side="left")
    det_degree = np.bincount(ed_det, minlength=dets.count)
    det_max = np.zeros(dets.count)
    np.maximum.at(det_max, ed_det, ed_val)
    det_first = np.ones(n_edges, dtype=bool)
    if n_edges:
        det_first[1:] = ed_det[1:] != ed_det[:-1]
    # Per edge, over the same face's edges up to it (rank order): count, running max, next edge's index.
    fo = np.lexsort((np.arange(n_edges), ed_face, ed_img))
    key = ed_img[fo] * (int(ed_face.max(initial=0)) + 1) + ed_face[fo]
    new_face = np.ones(n_edges, dtype=bool)
    new_face[1:] = key[1:] != key[:-1]
    seg_start = np.maximum.accumulate(np.where(new_face, np.arange(n_edges), 0))
    face_deg = np.empty(n_edges, dtype=np.int64)
    face_deg[fo] = np.arange(n_edges) - seg_start + 1
    # Running maximum per face, exact: on integer value ranks offset by face key.
    levels = np.unique(ed_val)
    level = np.searchsorted(levels, ed_val[fo])
    running = np.maximum.accumulate(key * (len(levels) + 1) + level) - key * (len(levels) + 1)
    face_max = np.empty(n_edges)
    face_max[fo] = levels[running] if n_edges else running
    next_same = np.full(n_edges, np.iinfo(np.int64).max, dtype=np.int64)
    if n_edges:
        cont = ~new_face[1:]
        next_same[fo[:-1][cont]] = fo[1:][cont]

    # Edges in each entry's graph: those of rank < valid, a prefix of the image's edges.
    prefix = np.zeros(n_entries, dtype=np.int64)
    for_img = edge_start[e_img]
    if n_edges:
        # number of the image's edges with rank < valid
        keyed = ed_img * (int(nd.max(initial=0)) + 2) + ed_rank
        prefix = np.searchsorted(keyed, e_img * (int(nd.max(initial=0)) + 2) + e_valid, side="left") - for_img
    fallback: list[int] = []
    done = 0
    while done < n_entries:
        sizes = np.cumsum(prefix[done:])
        stop = done + max(1, int(np.searchsorted(sizes, chunk_instances, side="right")))
        stop = min(stop, n_entries)
        idx = np.arange(done, stop)
        counts = prefix[idx]
        inst_entry = np.repeat(idx, counts)
        inst_edge = for_img[inst_entry] + np.arange(len(inst_entry)) - (np.cumsum(counts) - counts)[inst_entry - done]
        limit = for_img[inst_entry] + prefix[inst_entry]
        face_grows = next_same[inst_edge] < limit  # the face has a later edge inside this graph
        face_multi = (face_deg[inst_edge] >= 2) | face_grows
        det_multi = det_degree[ed_det[inst_edge]] >= 2
        conflict = np.zeros(n_entries, dtype=bool)
        conflict[inst_entry[det_multi & face_multi]] = True
        face_side = ~face_grows & ((face_deg[inst_edge] >= 2) | ~det_multi)
        det_side = det_first[inst_edge] & det_multi
        value = np.where(face_side, face_max[inst_edge], np.where(det_side, det_max[ed_det[inst_edge]], 0.0))
        counted = face_side | det_side
        tp_cont[idx] = np.bincount(inst_entry[counted] - done, weights=value[counted], minlength=len(idx))
        tp_disc[idx] = np.bincount(inst_entry[counted] - done, weights=value[counted] > 0.5, minlength=len(idx))
        fallback.extend(np.nonzero(conflict[idx])[0] + done)
        done = stop
    if fallback:
        fallback_arr = np.array(fallback, dtype=np.int64)
        for img in np.unique(e_img[fallback_arr]).tolist():
            mine = fallback_arr[e_img[fallback_arr] == img]
            mine = mine[np.argsort(e_valid[mine], kind="stable")]  # ascending valid counts
            s, t = int(edge_start[img]), int(edge_start[img + 1])
            solved = _conflict_entries(ed_face[s:t].tolist(), ed_rank[s:t].tolist(), ed_det[s:t].tolist(),
                                       ed_val[s:t].tolist(), e_valid[mine].tolist())
            for entry, (total, disc) in zip(mine.tolist(), solved):
                tp_cont[entry], tp_disc[entry] = total, disc
    start = np.searchsorted(e_img, np.arange(n_img + 1), side="left").astype(np.int64)
    return ImageEntries(start=start, threshold=e_thr, valid=e_valid, tp_cont=tp_cont, tp_disc=tp_disc,
                        faces=gt.faces_per_image())
