"""Web Push: the VAPID public key and patients' device subscriptions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.push_keys import VapidKeyError, application_server_key, same_public_key
from aftercare.store.patients import get_patient
from aftercare.store.push_subscriptions import delete_subscription, save_subscription, subscriptions_of
from api.deps import ServicesDep, SessionDep
from models.push import PushSubscriptionCreate, PushSubscriptionList, PushSubscriptionView, VapidPublicKey
from models.tables import PushSubscription

router = APIRouter(tags=["push"])


@router.get("/v1/push/public-key", response_model=VapidPublicKey)
async def read_public_key(services: ServicesDep) -> VapidPublicKey:
    """The VAPID public key for `PushManager.subscribe({applicationServerKey})`; 503 without push."""
    settings = services.settings
    if not settings.push_configured or settings.vapid_private_key is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "push notifications are not configured")
    try:
        public_key = application_server_key(settings.vapid_private_key.get_secret_value())
    except VapidKeyError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    if settings.vapid_public_key and not same_public_key(settings.vapid_public_key, public_key):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "VAPID_PUBLIC_KEY is not the public key of VAPID_PRIVATE_KEY"
        )
    return VapidPublicKey(public_key=public_key)


@router.post(
    "/v1/patients/{patient_id}/push-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=PushSubscriptionView,
)
async def subscribe(
    patient_id: str, subscription: PushSubscriptionCreate, session: SessionDep
) -> PushSubscriptionView:
    """Store a browser's PushSubscription for the patient (the same endpoint again replaces its keys)."""
    async with session.begin():
        await _known_patient(session, patient_id)
        row = await save_subscription(
            session,
            patient_id,
            subscription.endpoint,
            subscription.keys.p256dh,
            subscription.keys.auth,
            subscription.device,
        )
    return subscription_view(row)


@router.get("/v1/patients/{patient_id}/push-subscriptions", response_model=PushSubscriptionList)
async def list_subscriptions(patient_id: str, session: SessionDep) -> PushSubscriptionList:
    """The patient's subscribed devices, oldest first (without their keys)."""
    await _known_patient(session, patient_id)
    rows = await subscriptions_of(session, patient_id)
    return PushSubscriptionList(items=[subscription_view(row) for row in rows])


@router.delete(
    "/v1/patients/{patient_id}/push-subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def unsubscribe(patient_id: str, subscription_id: str, session: SessionDep) -> Response:
    """Forget one of the patient's devices; 404 when the patient has no such subscription."""
    async with session.begin():
        removed = await delete_subscription(session, subscription_id, patient_id=patient_id)
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"patient {patient_id!r} has no such subscription")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def subscription_view(row: PushSubscription) -> PushSubscriptionView:
    """A stored subscription as the API shows it: no keys."""
    return PushSubscriptionView(
        id=row.id,
        patient_id=row.patient_id,
        endpoint=row.endpoint,
        device=row.device,
        created_at=row.created_at,
    )


async def _known_patient(session: AsyncSession, patient_id: str) -> None:
    if await get_patient(session, patient_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r}")
