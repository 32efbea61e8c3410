"""Label Studio interop, for teams that annotate there: a release's clips as Label Studio tasks with
the labeling configuration to import them under (video with its sound, transcript, frame, one of the
seven classes by keys 1-7, or unsure by 8; the factory's label is left out, so nobody anchors on
it), and a Label Studio JSON export read back as {clip id: {annotator: label}} for `agreement`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from emofactory.core.classes import CANONICAL

CHOICES = "emotion"  # the Choices tag's name
UNSURE = "unsure"


def label_config(classes: Sequence[str] = CANONICAL) -> str:
    choices = "".join(f"<Choice value={quoteattr(c)} hotkey='{i}'/>" for i, c in enumerate(classes, 1))
    choices += f"<Choice value='{UNSURE}' hotkey='{len(classes) + 1}'/>"
    return (
        "<View><Video name='video' value='$video'/><Image name='frame' value='$frame'/>"
        "<Text name='transcript' value='$transcript'/>"
        f"<Choices name='{CHOICES}' toName='video' choice='single' showInLine='true'>{choices}</Choices></View>"
    )


def tasks(manifest: Mapping, media_url: str) -> list[dict]:
    """One task per clip of a release manifest; media at `media_url` + the release's relative path."""
    base = media_url.rstrip("/")
    out = []
    for clip in manifest["clips"]:
        media = clip.get("media", {})
        data = {"clip_id": clip["clip_id"], "transcript": clip.get("transcript", "")}
        data.update({key: f"{base}/{media[ext]}" for key, ext in (("video", "mp4"), ("frame", "jpg")) if ext in media})
        out.append({"data": data})
    return out


def annotator_of(annotation: Mapping) -> str:
    """Label Studio writes the annotator as a user id, or as a user object in some exports."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("id")
    if who in (None, ""):
        raise ValueError(f"annotation {annotation.get('id', '?')} names no annotator (completed_by)")
    return str(who)


def annotations(export: Sequence[Mapping], classes: Sequence[str] = CANONICAL) -> dict[str, dict[str, str]]:
    """A Label Studio JSON export as {clip id: {annotator: label}}: cancelled (skipped) annotations
    and `unsure` give no label; any other choice outside `classes` is an error naming its task."""
    found: dict[str, dict[str, str]] = {}
    for task in export:
        clip = task.get("data", {}).get("clip_id")
        if not clip:
            raise ValueError(f"task {task.get('id', '?')} has no data.clip_id (made by `emofactory review tasks`)")
        by_annotator = found.setdefault(str(clip), {})
        for annotation in task.get("annotations", []):
            if annotation.get("was_cancelled"):
                continue
            picked = [
                choice
                for result in annotation.get("result", [])
                if result.get("from_name") == CHOICES
                for choice in result.get("value", {}).get("choices", [])
            ]
            if not picked or picked[0] == UNSURE:
                continue
            if picked[0] not in classes:
                raise ValueError(f"task {task.get('id', '?')} (clip {clip}): unknown class {picked[0]!r}")
            by_annotator[annotator_of(annotation)] = picked[0]
    return found
