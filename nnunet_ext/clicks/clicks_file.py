"""The clicks a user gives for prediction: a JSON file ``{"<case id>": [[x, y, z], ...]}`` of points in world
coordinates (mm, as a viewer reports the cursor), one or more per case (a single point may be given as ``[x, y, z]``).
Checked before any prediction: the file reads, every value is a list of points of numbers, and every case to predict
has at least one (the message names the case and the fix)."""

import json
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

from nnunet_ext.core.errors import InputFilesError

FORMAT = '{"<case id>": [[x, y, z], ...]} in world coordinates (mm), one or more points per case'


def read_clicks(path: Union[str, Path]) -> Dict[str, List[List[float]]]:
    """case id -> its clicks (lists of floats); an :class:`InputFilesError` naming the file and the case otherwise."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputFilesError(f"The clicks file cannot be read as JSON ({error}).", file=path,
                              fix=f"write {FORMAT}") from None
    if not isinstance(content, dict):
        raise InputFilesError("The clicks file holds no JSON object of case ids.", file=path, fix=f"write {FORMAT}")
    clicks = {}
    for case, points in content.items():
        if isinstance(points, list) and points and all(isinstance(v, (int, float)) for v in points):
            points = [points]
        if not (isinstance(points, list) and points and all(
                isinstance(p, list) and p and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in p) for p in points)):
            raise InputFilesError(f"The clicks of case {case!r} are not a list of points of numbers: {points!r}.",
                                  file=path, case=case, fix=f"write {FORMAT}")
        clicks[str(case)] = [[float(v) for v in p] for p in points]
    return clicks


def check_clicks_for(cases: Iterable[str], clicks: Dict[str, Sequence], path: Union[str, Path]) -> None:
    """Every case to predict has a click."""
    missing = sorted(set(cases) - set(clicks))
    if missing:
        raise InputFilesError(
            f"The clicks file has no click for case(s) {', '.join(missing[:5])}"
            f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}; a click-guided model needs one for "
            f"every case.", file=path, case=missing[0],
            fix="add the world coordinates (mm) of a point inside each target of those cases, or score the model "
                "with simulated clicks (--simulated_clicks <reference labels folder>)")
