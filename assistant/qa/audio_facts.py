"""Facts measured from the audio at ingest: tempo, key and mode, loudness.

Values come from ``AudioFeatures``; the answer says they are estimates and
hedges when the key match was weak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import Snapshot, TrackInfo
from catalog.analysis.trust import measured_trust

AUDIO_ATTRIBUTES = ("tempo", "key", "mode", "loudness")

#: Below this key confidence (the analysis's margin between the best and second-best key)
#: the key is reported as a guess: benchmarks/analysis.py measures exact-key accuracy per
#: confidence band and puts the threshold above every band right less than two times in
#: three (catalog/analysis/trust.json; 0.75 in the 2026-11 measurement).
KEY_CONFIDENCE_FLOOR = measured_trust()["key"]["hedge_below"]
#: Share of tempo estimates the benchmark found within 4 % of the main pulse, and of any
#: metrical level (half, double, a third, triple). Where the first is under two in three,
#: a tempo answer says it may be felt at half or double (the usual way it is off).
TEMPO_STRICT_ACCURACY = measured_trust()["tempo"]["strict"]
TEMPO_LEVEL_ACCURACY = measured_trust()["tempo"]["any_level"]
TEMPO_OCTAVE_CAVEAT = TEMPO_STRICT_ACCURACY < 2 / 3


def measured_key_accuracy(confidence: float | None) -> float | None:
    """How often the benchmark found keys of this confidence exactly right (its band in
    trust.json, where the band held at least 3 keys), else None."""
    if confidence is None:
        return None
    for band in measured_trust()["key"]["bands"]:
        inside = band["from"] <= confidence < band["to"] or confidence == band["to"] == 1.0
        if inside and band["n"] >= 3 and band["exact"] is not None:
            return float(band["exact"])
    return None


def loudness_measure(
    tracks: Iterable[TrackInfo],
) -> tuple[Callable[[TrackInfo], float | None], Callable[[float], str]]:
    """How loudness is compared: integrated LUFS where the tracks have it, else RMS dBFS.

    LUFS (ITU-R BS.1770) weighs frequencies as hearing does and ignores silences, so it
    is what "louder" means to a listener; catalogs analysed before it was measured have
    only the RMS level, which is used, and said, until they are analysed again.
    """
    if any(t.loudness_lufs is not None for t in tracks):
        return (lambda t: t.loudness_lufs), (lambda v: f"{v:.1f} LUFS")
    return (lambda t: t.loudness_db), (lambda v: f"{v:.1f} dBFS RMS")


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
            text = f"{track.label} moves at about {track.tempo:.0f} BPM (estimated from the audio"
            if TEMPO_OCTAVE_CAVEAT:
                text += (
                    f"; it may be felt at half or double that, {track.tempo / 2:.0f} or "
                    f"{track.tempo * 2:.0f}"
                )
                facts["tempo_main_pulse_accuracy"] = round(TEMPO_STRICT_ACCURACY, 2)
            text += ")."
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
                f"I'm not sure: the key match was weak (confidence {conf:.2f}); the best "
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
                accuracy = measured_key_accuracy(conf)
                if accuracy is not None:
                    text += (
                        f" (confidence {conf:.2f}: keys this clear were right "
                        f"{accuracy:.0%} of the time in our tests)."
                    )
                    facts["measured_accuracy"] = round(accuracy, 2)
                else:
                    text += f" (confidence {conf:.2f})." if conf is not None else "."
        return Answer(text, value, hedged=hedged, confidence=conf, track_ids=ids, facts=facts)
    if attribute == "loudness":
        if track.loudness_db is None:
            return dont_know(
                "no_analysis", f"no loudness was measured for {track.label}.", track_ids=ids
            )
        getter, show = loudness_measure([track])
        mine = getter(track)
        levels = sorted(v for t in snapshot.tracks.values() if (v := getter(t)) is not None)
        rank = sum(1 for v in levels if v <= mine) / len(levels)
        where = (
            "louder than most"
            if rank > 0.66
            else "quieter than most"
            if rank < 0.34
            else ("about average")
        )
        level = f"an average level of {track.loudness_db:.1f} dBFS"
        if track.loudness_lufs is not None:
            level = f"a loudness of {track.loudness_lufs:.1f} LUFS ({level} RMS)"
        return Answer(
            f"{track.label} has {level}, {where} tracks in the library.",
            round(track.loudness_db, 1),
            track_ids=ids,
            facts={
                "loudness_db": track.loudness_db,
                "loudness_lufs": track.loudness_lufs,
                "loudness_rank": round(rank, 2),
            },
        )
    raise ValueError(f"not an audio attribute: {attribute}")
