"""Client tier: MSAL for Python (and requests) against `dwsim serve`, with the origins as printed.

Environment (all required):
  DWSIM_TENANT, DWSIM_CLIENT_ID, DWSIM_CLIENT_SECRET, DWSIM_USERNAME, DWSIM_PASSWORD
  DWSIM_ENTRA       Entra origin, e.g. https://127.0.0.1:7400
  DWSIM_LCS         LCS origin, e.g. https://127.0.0.1:7401
  DWSIM_DATAVERSE   the Dataverse origin as printed, e.g. https://127.0.0.1:7403
  DWSIM_FNO         the F&O origin as printed, e.g. https://127.0.0.1:7402
  DWSIM_LCS_PROJECT the LCS project id (`lcs project` in serve's output)
  REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) the CA file `serve` printed

Prints one line per step, `ok <step>` or `FAIL <step>: <reason>`, and exits 1 if any failed.
"""

import json
import os
import socket
import ssl
import sys
from urllib.parse import urlsplit, urlunsplit

import msal
import requests

FAILURES = 0


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"FAIL config: environment variable {name} is not set")
        sys.exit(1)
    return value


TENANT = env("DWSIM_TENANT")
CLIENT_ID = env("DWSIM_CLIENT_ID")
CLIENT_SECRET = env("DWSIM_CLIENT_SECRET")
USERNAME = env("DWSIM_USERNAME")
PASSWORD = env("DWSIM_PASSWORD")
ENTRA = env("DWSIM_ENTRA").rstrip("/")
LCS = env("DWSIM_LCS").rstrip("/")
DATAVERSE = env("DWSIM_DATAVERSE").rstrip("/")
FNO = env("DWSIM_FNO").rstrip("/")
LCS_PROJECT = env("DWSIM_LCS_PROJECT")
CA_FILE = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
AUTHORITY = f"{ENTRA}/{TENANT}"
LCS_SCOPE = "https://lcsapi.lcs.dynamics.com/.default"


class StepError(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise StepError(message)


def one_line(text):
    return " ".join(str(text).split())[:600]


def step(name, fn):
    global FAILURES
    try:
        note = fn()
    except StepError as e:
        FAILURES += 1
        print(f"FAIL {name}: {one_line(e)}")
        return False
    except Exception as e:  # a library's own exception: name it
        FAILURES += 1
        print(f"FAIL {name}: {type(e).__module__}.{type(e).__name__}: {one_line(e)}")
        return False
    print(f"ok {name}" + (f" ({note})" if isinstance(note, str) and note else ""))
    return True


def token_or_fail(result, what):
    """An MSAL result dict: the access token, or a StepError naming Entra's error."""
    expect(isinstance(result, dict), f"{what}: MSAL returned {result!r}")
    if "access_token" not in result:
        raise StepError(
            f"{what}: {result.get('error')} {result.get('error_codes', '')} "
            f"{(result.get('error_description') or '').splitlines()[0] if result.get('error_description') else ''}"
        )
    return result["access_token"]


# MSAL Python keeps only the host name of the authority (authority.py canonicalize() uses
# urlparse().hostname), so a request it builds from the instance alone, the user realm
# discovery before ROPC (https://{host}/common/userrealm/{user}), goes to port 443. When the
# Entra origin is not on 443 this session puts the port back; the documented http_client
# parameter is the only change made to MSAL.
ENTRA_URL = urlsplit(ENTRA)


class KeepEntraPort(requests.Session):
    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc == ENTRA_URL.hostname and ENTRA_URL.port not in (None, 443):
            url = urlunsplit(parts._replace(netloc=ENTRA_URL.netloc))
        return super().request(method, url, *args, **kwargs)


PORT_NOTE = (
    "MSAL drops the authority port for /common/userrealm; http_client puts it back"
    if ENTRA_URL.port not in (None, 443)
    else ""
)

# -------------------------------------------------------------------------------- TLS
def tls_strict():
    """Python 3.13+ (ssl.create_default_context, urllib3 2.x) verifies with VERIFY_X509_STRICT:
    a leaf without an Authority Key Identifier is refused. Check every origin that way."""
    expect(CA_FILE, "neither REQUESTS_CA_BUNDLE nor SSL_CERT_FILE is set")
    ctx = ssl.create_default_context(cafile=CA_FILE)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    bad = []
    for origin in (ENTRA, LCS, FNO, DATAVERSE):
        u = urlsplit(origin)
        try:
            with socket.create_connection((u.hostname, u.port or 443), timeout=10) as sock:
                with ctx.wrap_socket(sock, server_hostname=u.hostname):
                    pass
        except ssl.SSLError as e:
            bad.append(f"{origin}: {getattr(e, 'verify_message', None) or e}")
    expect(not bad, "; ".join(bad))


step("tls_x509_strict", tls_strict)

# -------------------------------------------------------------------------------- tokens
# A host Microsoft does not know: MSAL's default instance discovery asks
# https://login.microsoftonline.com/common/discovery/instance, so it is turned off and MSAL
# reads {authority}/v2.0/.well-known/openid-configuration (authorization_endpoint,
# token_endpoint required).
cca = msal.ConfidentialClientApplication(
    CLIENT_ID, client_credential=CLIENT_SECRET, authority=AUTHORITY, instance_discovery=False
) if True else None
tokens = {}


def cc_token(scope, key):
    def run():
        r = cca.acquire_token_for_client([scope])
        tokens[key] = token_or_fail(r, f"client credentials for {scope}")
        expect(r.get("token_type", "").lower() == "bearer", f"token_type is {r.get('token_type')!r}")
    return run


step("cc_token_dataverse", cc_token(f"{DATAVERSE}/.default", "dv"))
step("cc_token_fno", cc_token(f"{FNO}/.default", "fno"))


def cc_token_local_instance_discovery():
    """instance_discovery may name the discovery endpoint: dwsim's own
    {entra}/common/discovery/instance must answer tenant_discovery_endpoint."""
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=AUTHORITY,
        instance_discovery=f"{ENTRA}/common/discovery/instance",
    )
    token_or_fail(app.acquire_token_for_client([f"{DATAVERSE}/.default"]), "client credentials")


def instance_discovery_diagnosis():
    """MSAL only raises KeyError('tenant_discovery_endpoint'); say what the endpoint answered."""
    url = f"{ENTRA}/common/discovery/instance"
    params = {"api-version": "1.0", "authorization_endpoint": f"https://{ENTRA_URL.hostname}/{TENANT}/oauth2/v2.0/authorize"}
    try:
        r = requests.get(url, params=params, timeout=10)
    except Exception as e:
        return f"GET {url} failed: {e}"
    return (
        f"GET {url}?api-version=1.0&authorization_endpoint=https://{ENTRA_URL.hostname}/... (MSAL drops the port) "
        f"answered {r.status_code} {r.text[:200]}; MSAL (authority.py _initialize_entra_authority) needs "
        "tenant_discovery_endpoint in a JSON body"
    )


def cc_token_local_instance_discovery_step():
    try:
        cc_token_local_instance_discovery()
    except KeyError as e:
        raise StepError(f"KeyError {e}: {instance_discovery_diagnosis()}")


step("cc_token_via_dwsim_instance_discovery", cc_token_local_instance_discovery_step)

pca = msal.PublicClientApplication(
    CLIENT_ID, authority=AUTHORITY, instance_discovery=False, http_client=KeepEntraPort()
)


def ropc_lcs():
    r = pca.acquire_token_by_username_password(USERNAME, PASSWORD, [LCS_SCOPE])
    tokens["lcs"] = token_or_fail(r, f"password grant for {LCS_SCOPE}")
    return PORT_NOTE


step("ropc_token_lcs", ropc_lcs)


def ropc_account():
    """With openid/profile/offline_access (MSAL adds them) Entra answers id_token, client_info
    (base64url JSON {uid, utid}) and refresh_token; MSAL builds the account from them and
    acquire_token_silent serves the next call from its cache."""
    expect("lcs" in tokens, "no ROPC token (ropc_token_lcs failed)")
    accounts = pca.get_accounts(username=USERNAME)
    expect(accounts, "MSAL cached no account: the password-grant answer had no client_info/id_token")
    acc = accounts[0]
    expect(
        acc.get("home_account_id", "").count(".") == 1,
        f"home_account_id is {acc.get('home_account_id')!r}, expected <uid>.<utid> from client_info",
    )
    r = pca.acquire_token_silent([LCS_SCOPE], account=acc)
    expect(r and "access_token" in r, f"acquire_token_silent returned {r!r}")


step("ropc_account_cached", ropc_account)

# -------------------------------------------------------------------------------- calls
def call(method, url, token, **kw):
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "OData-Version": "4.0",
        "OData-MaxVersion": "4.0",
    }
    headers.update(kw.pop("headers", {}))
    r = requests.request(method, url, headers=headers, timeout=30, **kw)
    expect(r.status_code == 200, f"{method} {url} answered {r.status_code}: {r.text[:300]}")
    return r.json()


def dv_whoami():
    expect("dv" in tokens, "no Dataverse token")
    body = call("GET", f"{DATAVERSE}/api/data/v9.2/WhoAmI", tokens["dv"])
    expect(len(body.get("UserId", "")) == 36, f"WhoAmI answered {json.dumps(body)[:200]}")


def dv_accounts():
    expect("dv" in tokens, "no Dataverse token")
    body = call("GET", f"{DATAVERSE}/api/data/v9.2/accounts?$select=name&$top=2", tokens["dv"])
    rows = body.get("value")
    expect(isinstance(rows, list) and 1 <= len(rows) <= 2, f"value has {len(rows or [])} rows")


def fno_customers():
    expect("fno" in tokens, "no F&O token")
    body = call("GET", f"{FNO}/data/CustomersV3?cross-company=true&$top=2", tokens["fno"])
    rows = body.get("value")
    expect(isinstance(rows, list) and 1 <= len(rows) <= 2, f"value has {len(rows or [])} rows")


def lcs_detail():
    expect("lcs" in tokens, "no LCS token")
    body = call(
        "GET",
        f"{LCS}/environmentinfo/v1/detail/project/{LCS_PROJECT}/",
        tokens["lcs"],
        headers={"x-ms-version": "2017-09-15"},
    )
    expect(body.get("IsSuccess") is True, f"LCS envelope: {json.dumps(body)[:300]}")


step("dataverse_whoami", dv_whoami)
step("dataverse_accounts_top", dv_accounts)
step("fno_customers_cross_company", fno_customers)
step("lcs_environment_detail", lcs_detail)

print(f"{FAILURES} step(s) failed" if FAILURES else "all steps passed")
sys.exit(1 if FAILURES else 0)
