"""Facts measured from the audio at ingest: tempo, key and mode, loudness.

Values come from ``AudioFeatures``; the answer says they are estimates and
hedges when the key match was weak.
"""

from __future__ import annotations

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import Snapshot, TrackInfo

AUDIO_ATTRIBUTES = ("tempo", "key", "mode", "loudness")

#: Below this Krumhansl-Kessler correlation the key estimate is reported as a guess
#: (catalog.analysis: about 0.8-0.95 for clear tonal music, under 0.5 when ambiguous).
KEY_CONFIDENCE_FLOOR = 0.5


def _not_analysed(track: TrackInfo) -> Answer:
    return dont_know(
        "no_analysis",
        f"{track.label} has not been analysed yet (run `musicbert ingest` on it).",
        track_ids=[track.id],
    )


def answer_audio(
    track: TrackInfo, attribute: str, snapshot: Snapshot, asked_mode: str | None = None
) -> Answer:
    if not track.analysed:
        return _not_analysed(track)
    ids = [track.id]
    if track.silent and attribute != "loudness":
        return dont_know(
            "no_analysis", f"{track.label} is silent, so it has no {attribute}.", track_ids=ids
        )
    if attribute == "tempo":
        if track.tempo is None:
            return dont_know(
                "no_analysis", f"the analysis found no steady beat in {track.label}.", track_ids=ids
            )
        facts = {"tempo_bpm": track.tempo, "source": track.tempo_source}
        if track.tempo_source == "file":
            text = f"{track.label} is at {track.tempo:.0f} BPM (the tempo it was rendered at"
            if track.analysed_tempo is not None:
                text += f"; the audio analysis estimates {track.analysed_tempo:.0f}"
                facts["analysed_tempo"] = track.analysed_tempo
            text += ")."
        else:
            text = f"{track.label} moves at about {track.tempo:.0f} BPM (estimated from the audio)."
        return Answer(text, round(track.tempo, 1), track_ids=ids, facts=facts)
    if attribute in ("key", "mode"):
        if not track.key:
            return dont_know(
                "no_analysis", f"the analysis found no key for {track.label}.", track_ids=ids
            )
        conf = track.key_confidence
        hedged = conf is not None and conf < KEY_CONFIDENCE_FLOOR
        facts = {
            "key": track.key,
            "mode": track.mode,
            "key_confidence": conf,
            "source": track.key_source,
        }
        by = "by the analysis" if track.key_source != "file" else "(as rendered, per its file tags)"
        if attribute == "mode" and asked_mode:
            yes = (track.mode or "").lower() == asked_mode
            verb = "Yes" if yes else "No"
            text = f"{verb}: {track.label} is in {track.key_name} {by}"
            value: object = yes
        elif attribute == "mode":
            text = f"{track.label} is in a {track.mode} key ({track.key_name}) {by}"
            value = track.mode
        else:
            text = f"{track.label} is in {track.key_name} {by}"
            value = track.key_name
        if hedged:
            text = (
                f"I'm not sure: the key match was weak (correlation {conf:.2f}); the best "
                f"guess is {track.key_name} for {track.label}."
            )
        else:
            if track.key_source == "file":
                text += (
                    f"; the audio analysis hears {track.analysed_key}."
                    if track.analysed_key and track.analysed_key != track.key_name
                    else "."
                )
            else:
                text += f" (key match {conf:.2f})." if conf is not None else "."
        return Answer(text, value, hedged=hedged, confidence=conf, track_ids=ids, facts=facts)
    if attribute == "loudness":
        if track.loudness_db is None:
            return dont_know(
                "no_analysis", f"no loudness was measured for {track.label}.", track_ids=ids
            )
        levels = sorted(
            t.loudness_db for t in snapshot.tracks.values() if t.loudness_db is not None
        )
        rank = sum(1 for v in levels if v <= track.loudness_db) / len(levels)
        where = (
            "louder than most"
            if rank > 0.66
            else "quieter than most"
            if rank < 0.34
            else ("about average")
        )
        return Answer(
            f"{track.label} has an average level of {track.loudness_db:.1f} dBFS, {where} "
            f"tracks in the library.",
            round(track.loudness_db, 1),
            track_ids=ids,
            facts={"loudness_db": track.loudness_db, "loudness_rank": round(rank, 2)},
        )
    raise ValueError(f"not an audio attribute: {attribute}")
