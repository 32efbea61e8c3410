"""SpEmoC dialogue segmentation (seed 003 §3.1): a segment is kept when it holds at least
`min_words` words and ends with terminal punctuation. With word times, a segment is first re-cut
at each word that ends a sentence, and the rule applies to each sentence."""

from __future__ import annotations

from emofactory.core.media import segment_id
from emofactory.v1 import asr_pb2


def sentence_rule(text: str, min_words: int, terminal: str) -> str:
    """Why a sentence is dropped; empty when it is kept."""
    words = len(text.split())
    if words < min_words:
        return f"{words} words, fewer than {min_words}"
    if not text.rstrip().endswith(tuple(terminal)):
        return "does not end with terminal punctuation"
    return ""


def split_sentences(words: list[asr_pb2.Word], terminal: str) -> list[list[asr_pb2.Word]]:
    sentences, current = [], []
    for word in words:
        current.append(word)
        if word.text.rstrip().endswith(tuple(terminal)):
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def apply_dialogue_rules(transcript: asr_pb2.SegmentTranscript, video_id: str, min_words: int, terminal: str) -> None:
    """Sets kept / drop_reason, and the sentences when word times allow a re-cut."""
    if transcript.failed:
        transcript.kept, transcript.drop_reason = False, "no transcript"
        return
    if not transcript.words:
        reason = sentence_rule(transcript.text, min_words, terminal)
        transcript.kept, transcript.drop_reason = not reason, reason
        return
    for words in split_sentences(list(transcript.words), terminal):
        text = " ".join(w.text for w in words)
        reason = sentence_rule(text, min_words, terminal)
        transcript.sentences.add(
            segment_id=segment_id(video_id, words[0].start_s, words[-1].end_s),
            start_s=words[0].start_s,
            end_s=words[-1].end_s,
            text=text,
            words=len(words),
            kept=not reason,
            drop_reason=reason,
        )
    transcript.kept = any(s.kept for s in transcript.sentences)
    transcript.drop_reason = "" if transcript.kept else "no sentence passes the dialogue rules"
