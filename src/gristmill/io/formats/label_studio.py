"""Label Studio JSON exports: a list of tasks ``{"id", "data": {...}, "annotations":
[{"completed_by", "result": [...], ...}], "predictions"?}``.

A format has one record kind, so one export family becomes three formats, chosen by
what the task's ``data`` holds (and what its results point at): an image/audio/video
URL → ``label-studio-media``; a text field → ``label-studio-text``; a chat (chatmessage
results or a list of role/content turns) → ``label-studio-chat``.

Every result, human or model, also becomes a row of the ``annotations`` attribute, so
agreement and review work over the raw judgements, whatever the record kind. Human
rows have origin ``human:<email or id>``, predictions ``model:<model_version>``.
Results are popped from their annotations; what else an annotation carries (lead time,
history, ...) stays in ``meta`` under ``annotations``, and reviews go to ``meta.reviews``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import orjson

from gristmill.io.formats.base import (
    Converted,
    Format,
    Row,
    RowContext,
    RowError,
    as_number,
    is_object_list,
)
from gristmill.io.formats.messages import (
    Message,
    parse_one,
    parse_openai_messages,
    require_nonempty,
    split_system,
)
from gristmill.records.kinds import Kind

# -- results: who judged what -----------------------------------------------------------------


@dataclass
class Result:
    """One result of one annotation or prediction, with its provenance."""

    origin: str  # human:<who> or model:<version>
    human: bool
    annotation_id: str | None
    was_cancelled: bool
    ground_truth: bool
    raw: Row
    where: str  # field path, for errors

    @property
    def type(self) -> str:
        value = self.raw.get("type")
        return value if isinstance(value, str) else ""

    @property
    def value(self) -> Row:
        value = self.raw.get("value")
        return value if isinstance(value, dict) else {}

    @property
    def to_name(self) -> str:
        value = self.raw.get("to_name")
        return value.lstrip("$") if isinstance(value, str) else ""

    def attribute_row(self) -> Row:
        """A row of the ``annotations`` attribute."""
        from_name = self.raw.get("from_name")
        value = self.raw.get("value")
        return {
            "annotator": self.origin,
            "question": from_name if isinstance(from_name, str) else None,
            "type": self.type or None,
            "value": None if value is None else orjson.dumps(value).decode(),
            "origin": self.origin,
            "annotation_id": self.annotation_id,
            "was_cancelled": self.was_cancelled,
            "ground_truth": self.ground_truth,
        }


def annotator(annotation: Row) -> str:
    """``human:<email>``, else ``human:<user id>`` (``completed_by`` is a user object or
    an id, depending on the export)."""
    who = annotation.get("completed_by")
    ident = who.get("email") or who.get("id") if isinstance(who, dict) else who
    if ident is None or ident == "":
        ident = annotation.get("created_username") or "unknown"
    return f"human:{ident}"


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)


def pop_results(row: Row) -> tuple[list[Result], list[Row]]:
    """Pop the results out of ``annotations`` and ``predictions`` (and the reviews out
    of annotations); the rest of each annotation stays in the row for ``meta``."""
    results: list[Result] = []
    reviews: list[Row] = []
    for key, human in (("annotations", True), ("predictions", False)):
        items = row.get(key, [])
        if items is None:
            items = []
        if not isinstance(items, list):
            raise RowError(f"expected a list, got {type(items).__name__}", key)
        kept: list[Row] = []
        for i, original in enumerate(items):
            where = f"{key}[{i}]"
            if not isinstance(original, dict):
                raise RowError(f"expected an object, got {type(original).__name__}", where)
            item = dict(original)  # pop from a copy: the parsed row stays whole
            kept.append(item)
            raw_results = item.pop("result", None) or []
            if not isinstance(raw_results, list):
                raise RowError("expected a list", f"{where}.result")
            if human:
                origin = annotator(item)
                for review in item.pop("reviews", None) or []:
                    reviews.append(review)
            else:
                version = item.get("model_version")
                origin = f"model:{version}" if version not in (None, "") else "model:unknown"
            for j, res in enumerate(raw_results):
                if not isinstance(res, dict):
                    raise RowError("expected an object", f"{where}.result[{j}]")
                results.append(
                    Result(
                        origin=origin,
                        human=human,
                        annotation_id=_id_text(item.get("id")),
                        was_cancelled=item.get("was_cancelled") is True,
                        ground_truth=item.get("ground_truth") is True,
                        raw=res,
                        where=f"{where}.result[{j}]",
                    )
                )
        kept = [item for item in kept if item]
        if kept:
            row[key] = kept
        else:
            row.pop(key, None)
    return results, reviews


def _labels_of(result: Result) -> list[str]:
    """Choice or taxonomy labels of a result (a taxonomy path joins with " / ")."""
    value = result.value
    if result.type == "taxonomy":
        paths = value.get("taxonomy") or []
        return [" / ".join(map(str, p)) if isinstance(p, list) else str(p) for p in paths]
    labels = value.get(result.type) if result.type else None
    if result.type == "choices" and isinstance(labels, list):
        return [str(label) for label in labels]
    return []


def label_rows(results: list[Result]) -> list[Row]:
    """Choices and taxonomy picks as flat label rows (the ``labels`` attribute)."""
    return [
        {"annotator": r.origin, "question": r.raw.get("from_name"), "label": label}
        for r in results
        if r.human and not r.was_cancelled
        for label in _labels_of(r)
    ]


# -- what a task's data holds -----------------------------------------------------------------

_MEDIA_WORDS = (
    ("image", "image"),
    ("img", "image"),
    ("photo", "image"),
    ("picture", "image"),
    ("audio", "audio"),
    ("sound", "audio"),
    ("speech", "audio"),
    ("video", "video"),
)
_MEDIA_EXTENSIONS = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"), "audio"),
    **dict.fromkeys((".mp4", ".webm", ".mov", ".avi", ".mkv"), "video"),
}
_URI_START = re.compile(r"^(https?://|s3://|gs://|azure-blob://|file:|data:|/)")
TEXT_KEYS = ("text", "content", "body", "document", "sentence", "review", "paragraph", "html")
_IMAGE_RESULTS = frozenset(
    {"rectanglelabels", "rectangle", "polygonlabels", "polygon", "keypointlabels", "brushlabels"}
)


def media_type(key: str, uri: str) -> str | None:
    """image/audio/video from the data key's name, else from the URI's extension."""
    if not uri or any(c.isspace() for c in uri.strip()):
        return None
    lowered = key.lower()
    for word, kind in _MEDIA_WORDS:
        if word in lowered:
            return kind if _URI_START.match(uri) or _extension(uri) else None
    if _URI_START.match(uri) or ":" not in uri:
        return _MEDIA_EXTENSIONS.get(_extension(uri))
    return None


def _extension(uri: str) -> str:
    return PurePosixPath(urlparse(uri).path).suffix.lower()


@dataclass
class MediaTarget:
    key: str
    index: int | None  # position in a list (repeater tasks), else None
    uri: str
    media_type: str


def media_targets(data: Row) -> list[MediaTarget]:
    """Media URIs in a task's data: plain values and lists of URIs or ``{"url": ...}``."""
    found: list[MediaTarget] = []
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            uri = item
            if isinstance(item, dict):
                uri = next(
                    (item[k] for k in ("url", "uri", "src", "image", "audio") if k in item), None
                )
            if isinstance(uri, str) and (kind := media_type(key, uri)):
                found.append(MediaTarget(key, i if isinstance(value, list) else None, uri, kind))
    return found


def _chat_keys(data: Row) -> list[str]:
    return [k for k, v in data.items() if is_object_list(v) and all("content" in m for m in v)]


def classify(task: Row) -> tuple[Kind, float] | None:
    """Which record kind a task becomes, and how sure that is (0..1)."""
    data = task.get("data")
    if not isinstance(data, dict) or not data:
        return None
    shape = 1.0 if ("annotations" in task or "predictions" in task) else 0.7
    types: set[str] = set()
    targets: set[str] = set()
    for key in ("annotations", "predictions"):
        for item in task.get(key) or []:
            for res in (item.get("result") or []) if isinstance(item, dict) else []:
                if isinstance(res, dict):
                    types.add(str(res.get("type")))
                    targets.add(str(res.get("to_name", "")).lstrip("$"))
    if "chatmessage" in types:
        return Kind.CONVERSATION, shape
    if _chat_keys(data):
        return Kind.CONVERSATION, 0.9 * shape
    media_keys = {t.key for t in media_targets(data)}
    text_keys = {k for k, v in data.items() if isinstance(v, str) and k not in media_keys}
    if targets & media_keys or (media_keys and types & _IMAGE_RESULTS):
        return Kind.MEDIA, shape
    if targets & text_keys:
        hit = targets & text_keys
        return Kind.DOCUMENT, (1.0 if hit & set(TEXT_KEYS) else 0.9) * shape
    if media_keys:
        return Kind.MEDIA, shape
    if text_keys & set(TEXT_KEYS):
        return Kind.DOCUMENT, shape
    if text_keys:
        return Kind.DOCUMENT, 0.5 * shape
    return None


def _task_meta(row: Row, reviews: list[Row]) -> Row:
    """The task's own ``meta`` object merged with the reviews."""
    meta: Row = {}
    task_meta = row.get("meta")
    if isinstance(task_meta, dict):
        row.pop("meta")
        meta.update(task_meta)
    if reviews:
        meta["reviews"] = reviews
    return meta


def _data_copy(row: Row) -> Row:
    """The task's ``data`` as a copy the caller may pop from (what is left is meta)."""
    data = row.get("data")
    if not isinstance(data, dict):
        raise RowError("missing required field" if data is None else "expected an object", "data")
    copy = row["data"] = dict(data)
    return copy


def _finish(
    row: Row, out: Row, meta: Row, results: list[Result], extra: dict[str, list[Row]]
) -> Converted:
    """Drop an emptied ``data``, attach meta and the attribute rows."""
    if not row.get("data"):
        row.pop("data", None)
    if meta:
        out["meta"] = meta
    attributes = {"annotations": [r.attribute_row() for r in results]}
    attributes.update({k: v for k, v in extra.items() if v})
    return Converted(out, attributes=attributes)


class _LabelStudio(Format):
    def detect(self, sample: list[Row], file: Path) -> float:
        if not sample:
            return 0.0
        total = 0.0
        for task in sample:
            found = classify(task)
            if found is not None and found[0] == self.kind:
                total += found[1]
        return total / len(sample)


# -- media ---------------------------------------------------------------------------------


def _choose_target(targets: list[MediaTarget], results: list[Result]) -> MediaTarget:
    for target in targets:
        if any(r.to_name == target.key for r in results):
            return target
    return targets[0]


def _belongs(result: Result, target: MediaTarget, data_keys: set[str], single: bool) -> bool:
    """Does a result mark up this media? It names the media's data key; or it names no
    data key at all (repeater regions are ``page_<i>``) and the task has one media, or
    the name ends with the media's list index."""
    if result.to_name == target.key:
        return True
    if result.to_name in data_keys:
        return False  # it marks up another field (e.g. a choice about data.text)
    return single or (target.index is not None and result.to_name.endswith(f"_{target.index}"))


def _number(result: Result, key: str) -> float:
    number = as_number(result.value.get(key))
    if number is None:
        raise RowError("expected a number", f"{result.where}.value.{key}")
    return number


class LabelStudioMedia(_LabelStudio):
    name = "label-studio-media"
    kind = Kind.MEDIA
    description = (
        "Label Studio export tasks whose data holds an image/audio/video URL: "
        "rectangles → boxes and polygons (percent units), choices/taxonomy → labels, "
        "audio regions → segments, text areas → transcripts or captions."
    )

    def convert(self, row: Row, ctx: RowContext) -> Converted:
        data = _data_copy(row)
        results, reviews = pop_results(row)
        targets = media_targets(data)
        if not targets:
            raise RowError("no image, audio or video URL in data", "data")
        target = _choose_target(targets, results)
        keys = set(data)
        if target.index is None:
            data.pop(target.key)  # a repeater's list stays whole in meta
        out: Row = {
            "uri": target.uri,
            "media_type": target.media_type,
            "labels": [],
            "captions": [],
            "boxes": [],
            "polygons": [],
            "segments": [],
            "transcripts": [],
        }
        meta = _task_meta(row, reviews)
        single = len(targets) == 1
        for res in results:
            if not res.human or res.was_cancelled or not _belongs(res, target, keys, single):
                continue
            self._apply(res, out, meta)
        if out["boxes"] or out["polygons"]:
            meta["coordinates"] = "percent"
        return _finish(row, out, meta, results, {})

    def _apply(self, res: Result, out: Row, meta: Row) -> None:
        value, kind = res.value, res.type
        raw_labels = value.get(kind)
        names = [str(x) for x in raw_labels] if isinstance(raw_labels, list) else []
        names = names or [""]  # an unlabelled region still counts
        for size in ("original_width", "original_height"):
            if isinstance(res.raw.get(size), int | float):
                meta.setdefault(size, res.raw[size])
        if kind in ("rectanglelabels", "rectangle"):
            box = {k: _number(res, k) for k in ("x", "y", "width", "height")}
            rotation = as_number(value.get("rotation")) or 0.0
            out["boxes"] += [
                {"label": n, **box, "rotation": rotation, "annotator": res.origin} for n in names
            ]
        elif kind in ("polygonlabels", "polygon"):
            points = value.get("points")
            if not isinstance(points, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(as_number(c) is not None for c in p)
                for p in points
            ):
                raise RowError("expected a list of [x, y] points", f"{res.where}.value.points")
            pts = [[float(c) for c in p] for p in points]
            out["polygons"] += [{"label": n, "points": pts, "annotator": res.origin} for n in names]
        elif kind in ("choices", "taxonomy"):
            out["labels"] += [label for label in _labels_of(res) if label not in out["labels"]]
        elif kind == "labels" and "start" in value and out["media_type"] != "image":
            start, end = _number(res, "start"), _number(res, "end")
            out["segments"] += [
                {"label": n, "start": start, "end": end, "annotator": res.origin} for n in names
            ]
        elif kind == "textarea":
            texts = [t for t in value.get("text") or [] if isinstance(t, str) and t.strip()]
            if out["media_type"] == "image":
                out["captions"] += texts
            else:
                begin, until = as_number(value.get("start")), as_number(value.get("end"))
                out["transcripts"] += [
                    {"text": t, "start": begin, "end": until, "speaker": None} for t in texts
                ]


# -- text ----------------------------------------------------------------------------------


class LabelStudioText(_LabelStudio):
    name = "label-studio-text"
    kind = Kind.DOCUMENT
    description = (
        "Label Studio export tasks over text (data.text or another text field); "
        "choices become the `labels` attribute."
    )

    def convert(self, row: Row, ctx: RowContext) -> Converted:
        data = _data_copy(row)
        results, reviews = pop_results(row)
        key = _text_key(data, results)
        text = data.pop(key)
        if not text.strip():
            raise RowError("empty text", f"data.{key}")
        out: Row = {"text": text, "title": None, "url": None, "language": None}
        if isinstance(data.get("title"), str) and data["title"].strip():
            out["title"] = data.pop("title")
        meta = _task_meta(row, reviews)
        return _finish(row, out, meta, results, {"labels": label_rows(results)})


def _text_key(data: Row, results: list[Result]) -> str:
    """The field the results point at, else the first text-like key, else the first
    string field."""
    strings = [k for k, v in data.items() if isinstance(v, str)]
    for res in results:
        if res.to_name in strings:
            return res.to_name
    for key in (*TEXT_KEYS, *strings):
        if key in strings:
            return key
    raise RowError("no text field in data", "data")


# -- chat ------------------------------------------------------------------------------------


class LabelStudioChat(_LabelStudio):
    name = "label-studio-chat"
    kind = Kind.CONVERSATION
    description = (
        "Label Studio chat tasks: the data's chat turns followed by the first "
        "annotation's chatmessage results."
    )

    def convert(self, row: Row, ctx: RowContext) -> Converted:
        data = _data_copy(row)
        results, reviews = pop_results(row)
        messages: list[Message] = []
        for key in _chat_keys(data):
            turns = data.pop(key)
            messages += require_nonempty(parse_openai_messages(turns, f"data.{key}"), f"data.{key}")
        chat = [r for r in results if r.type == "chatmessage" and r.human and not r.was_cancelled]
        first = chat[0].annotation_id if chat else None
        for res in chat:
            if res.annotation_id != first:  # one conversation per record: the first annotator's
                continue
            where = f"{res.where}.value.chatmessage"
            message = parse_one(parse_openai_messages, res.value.get("chatmessage"), where)
            if not message["content"].strip() and not message["tool_calls"]:
                raise RowError("empty text", f"{where}.content")
            messages.append(message)
        if not messages:
            raise RowError("no chat messages in data or annotations", "annotations")
        system, messages = split_system(messages)
        if not messages:
            raise RowError("only a system message", "annotations")
        out: Row = {"system": system, "messages": messages, "tools": None}
        meta = _task_meta(row, reviews)
        return _finish(row, out, meta, results, {"labels": label_rows(results)})


FORMATS: list[Format] = [LabelStudioMedia(), LabelStudioText(), LabelStudioChat()]
