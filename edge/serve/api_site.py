"""The Site API: how the model does at this clinic, and the threshold the clinic chooses.

    GET  /api/site/performance?score=abnormal|CLASS&cost_per_test=C   (operator)
    GET  /api/site/calibration                the calibration in force, and earlier ones
    POST /api/site/calibration   {"score", "target": {"sensitivity": 0.9}, "precision",
                                  "referral": {"ood_acceptance", "accuracy"}, "dry_run"}   (admin)

Only the confirmed cases classified by the model being served count: another version's scores
are another scale. The numbers come from edge/site, as `cxr-edge calibrate` computes them.
"""

from __future__ import annotations

import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.serve.params import json_object
from edge.serve.roles import ADMIN, OPERATOR, require
from edge.serve.station import Station
from edge.site import calibration as site_calibration
from edge.site import performance, screening

NOT_CALIBRATED = ("not calibrated for this model version: results carry no screen decision, "
                  "and the manifest's referral thresholds apply")
REFERRAL_TARGETS = ("ood_acceptance", "accuracy")
CALIBRATION_EXAMPLE = '{"score": "abnormal", "target": {"sensitivity": 0.9}}'


def routes(station: Station) -> list[Route]:
    def served():
        current = station.slot.current
        return (current.classifier.model_sha256, list(current.info["class_names"]),
                current.version)

    def cases_for(model_sha256: str) -> tuple[list[dict], int]:
        """(this model's confirmed cases with their label, how many belong to other models)."""
        cases, other = [], 0
        for case in station.findings.confirmed_cases():
            if case.get("model_sha256") != model_sha256:
                other += 1
            else:
                cases.append(case | {"label": case["finding"]["label"]})
        return cases, other

    def status(model_sha256: str, version: str) -> dict:
        active = station.calibrations.active_for(model_sha256)
        return {"model": {"version": version, "sha256": model_sha256},
                "calibrated": active is not None,
                "calibration": None if active is None else active.to_json(),
                "message": None if active else NOT_CALIBRATED}

    def get_performance(request: Request) -> Response:
        require(request, OPERATOR)
        model_sha256, class_names, version = served()
        score = request.query_params.get("score") or _default_score(station, class_names)
        cost = _optional_number(request.query_params.get("cost_per_test"), "cost_per_test")
        cases, other = cases_for(model_sha256)
        results = [dict(row) for row in station.database.all(
            "SELECT status, reason, created_at, screen FROM results")]
        try:
            numbers = performance.site_performance(
                results, cases, class_names, score,
                calibration=station.calibrations.active_for(model_sha256), cost_per_test=cost)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        return JSONResponse(numbers | status(model_sha256, version)
                            | {"confirmed_other_models": other})

    def get_calibration(request: Request) -> Response:
        require(request, OPERATOR)
        model_sha256, _, version = served()
        return JSONResponse(status(model_sha256, version)
                            | {"history": station.calibrations.history()})

    async def post_calibration(request: Request) -> Response:
        who = require(request, ADMIN)
        body = await json_object(request, CALIBRATION_EXAMPLE)
        model_sha256, class_names, version = served()
        referral = body.get("referral") or {}
        if not isinstance(referral, dict) or set(referral) - set(REFERRAL_TARGETS):
            raise HTTPException(400, f"referral takes {list(REFERRAL_TARGETS)}")
        cases, _ = cases_for(model_sha256)
        try:
            proposed = site_calibration.fit(
                cases, class_names, body.get("score") or screening.SCORE_ABNORMAL,
                body.get("target"), model_sha256=model_sha256, model_version=version,
                created_by=who.name,
                precision=_optional_number(body.get("precision"), "precision")
                or screening.DEFAULT_PRECISION,
                referral_targets=referral)
        except screening.CalibrationRefused as err:
            return JSONResponse({"error": "calibration_refused", "detail": str(err)},
                                status_code=422)
        except (ValueError, TypeError) as err:
            raise HTTPException(400, str(err)) from None
        current = station.calibrations.active_for(model_sha256)
        change = performance.preview(cases, class_names, proposed, current)
        if body.get("dry_run"):
            return JSONResponse({"applied": False, "calibration": proposed.to_json(),
                                 "preview": change})
        station.calibrations.apply(proposed, who.name)
        return JSONResponse({"applied": True, "calibration": proposed.to_json(),
                             "preview": change})

    return [
        Route("/api/site/performance", get_performance),
        Route("/api/site/calibration", get_calibration, methods=["GET"]),
        Route("/api/site/calibration", post_calibration, methods=["POST"]),
    ]


def _default_score(station: Station, class_names: list[str]) -> str:
    active = station.calibration
    if active is not None:
        return active.score
    return (screening.SCORE_ABNORMAL if screening.normal_class(class_names) is not None
            else class_names[0])


def _optional_number(value, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise HTTPException(400, f"{name} must be a non-negative number")
    return number
