"""Platform credentials whose repr, str and model dump never show the secret values."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class Credentials(BaseModel):
    """What an adapter needs to call a platform and check its webhooks.

    ==========  =========================  =========================  ======================
    platform    key                        secret                     other
    ==========  =========================  =========================  ======================
    shopify     (unused)                   app client secret          access_token
                                           (webhook HMAC key)
    woocommerce consumer key (ck_…)        consumer secret (cs_…)     webhook_secret
    douyin      app_key                    app_secret                 account_id = shop_id,
                                                                      access_token optional
    youzan      client_id                  client_secret              account_id = grant_id
                                                                      (kdt_id)
    ==========  =========================  =========================  ======================
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: SecretStr = SecretStr("")
    secret: SecretStr
    access_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    account_id: str = ""

    def reveal_key(self) -> str:
        return self.key.get_secret_value()

    def reveal_secret(self) -> str:
        return self.secret.get_secret_value()

    def reveal_access_token(self) -> str | None:
        return self.access_token.get_secret_value() if self.access_token else None

    def reveal_webhook_secret(self) -> str | None:
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None
