// Client tier: DynamicsWebApi (and @azure/msal-node for the tokens) against `dwsim serve`,
// unchanged, with the origins exactly as `serve` prints them.
//
// Environment (all required):
//   DWSIM_TENANT, DWSIM_CLIENT_ID, DWSIM_CLIENT_SECRET
//   DWSIM_ENTRA      Entra origin, e.g. https://127.0.0.1:7400
//   DWSIM_DATAVERSE  the Dataverse origin as printed, e.g. https://127.0.0.1:7403
//   DWSIM_FNO        the F&O origin as printed, e.g. https://127.0.0.1:7402
//   NODE_EXTRA_CA_CERTS  the CA file `serve` printed (read by Node at start-up)
//
// Prints one line per step, `ok <step>` or `FAIL <step>: <reason>`, and exits 1 if any failed.
// The steps run in order; a step whose prerequisite failed says so in its reason.

import { ConfidentialClientApplication } from "@azure/msal-node";
import { DynamicsWebApi } from "dynamics-web-api";

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.log(`FAIL config: environment variable ${name} is not set`);
    process.exit(1);
  }
  return v;
};
const TENANT = env("DWSIM_TENANT");
const CLIENT_ID = env("DWSIM_CLIENT_ID");
const CLIENT_SECRET = env("DWSIM_CLIENT_SECRET");
const ENTRA = env("DWSIM_ENTRA").replace(/\/+$/, "");
const DATAVERSE = env("DWSIM_DATAVERSE");
const FNO = env("DWSIM_FNO").replace(/\/+$/, "");
const DV_SCOPE = `${DATAVERSE.replace(/\/+$/, "")}/.default`;
const FNO_SCOPE = `${FNO}/.default`;

let failures = 0;
const ok = (step, note) => console.log(`ok ${step}${note ? ` (${note})` : ""}`);
const fail = (step, reason) => {
  failures += 1;
  console.log(`FAIL ${step}: ${String(reason).replace(/\s+/g, " ").slice(0, 600)}`);
};
class StepError extends Error {}
const expect = (cond, msg) => {
  if (!cond) throw new StepError(msg);
};
// A DynamicsWebApi / msal / fetch error as one precise line.
const describe = (e) => {
  if (e instanceof StepError) return e.message;
  const parts = [];
  if (e?.status) parts.push(`HTTP ${e.status}`);
  if (e?.errorCode) parts.push(e.errorCode);
  if (e?.code && typeof e.code === "string") parts.push(e.code);
  const msg = e?.message || e?.errorMessage || (typeof e === "object" ? JSON.stringify(e) : String(e));
  parts.push(msg);
  if (e?.innererror?.message && e.innererror.message !== msg) parts.push(`inner: ${e.innererror.message}`);
  if (e?.cause?.message) parts.push(`cause: ${e.cause.message}`);
  return parts.join(" ");
};
const step = async (name, fn) => {
  try {
    const note = await fn();
    ok(name, typeof note === "string" ? note : undefined);
    return true;
  } catch (e) {
    fail(name, describe(e));
    return false;
  }
};
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const run = Date.now().toString(36).toUpperCase();

// ---------------------------------------------------------------- tokens (msal-node)
// The Entra host is not one Microsoft knows: without knownAuthorities msal-node asks
// https://login.microsoftonline.com/common/discovery/instance. With it, msal-node reads
// {authority}/v2.0/.well-known/openid-configuration and needs authorization_endpoint,
// token_endpoint, issuer and jwks_uri there.
const cca = new ConfidentialClientApplication({
  auth: {
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    authority: `${ENTRA}/${TENANT}`,
    knownAuthorities: [new URL(ENTRA).host],
  },
});

// msal-node's own error (endpoints_resolution_error) does not say what was wrong with the
// discovery document; say it here.
const discoveryDiagnosis = async () => {
  const url = `${ENTRA}/${TENANT}/v2.0/.well-known/openid-configuration`;
  try {
    const res = await fetch(url);
    if (!res.ok) return `GET ${url} answered ${res.status}`;
    const doc = await res.json();
    const missing = ["authorization_endpoint", "token_endpoint", "issuer", "jwks_uri"].filter((k) => !(k in doc));
    if (missing.length) return `${url} lacks ${missing.join(", ")} (msal-common isOpenIdConfigResponse requires them)`;
    const issuer = new URL(doc.issuer);
    if (issuer.host !== new URL(ENTRA).host) return `issuer ${doc.issuer} is not on the authority's host (msal-common validateIssuer)`;
    return `${url} looks complete`;
  } catch (e) {
    return `GET ${url} failed: ${e.message}`;
  }
};
const msalToken = async (scope) => {
  try {
    const r = await cca.acquireTokenByClientCredential({ scopes: [scope] });
    expect(r?.accessToken, "no accessToken in the result");
    return r.accessToken;
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(`${describe(e)}; ${await discoveryDiagnosis()}`);
  }
};

let dvToken = null;
let fnoToken = null;
await step("msal_token_dataverse", async () => {
  dvToken = await msalToken(DV_SCOPE);
});
await step("msal_token_fno", async () => {
  fnoToken = await msalToken(FNO_SCOPE);
});

// So that the Dataverse and F&O steps still say something about those servers when msal-node
// cannot get a token, fall back to a plain client-credentials POST (reported as its own step).
const rawToken = async (scope) => {
  const res = await fetch(`${ENTRA}/${TENANT}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scope }),
  });
  const body = await res.json();
  expect(res.ok && body.access_token, `token endpoint answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
  return body.access_token;
};
if (!dvToken || !fnoToken) {
  await step("raw_token_fallback", async () => {
    if (!dvToken) dvToken = await rawToken(DV_SCOPE);
    if (!fnoToken) fnoToken = await rawToken(FNO_SCOPE);
    return "msal-node failed; later steps use tokens from a plain POST to the token endpoint";
  });
}
const getDvToken = async () => {
  try {
    const r = await cca.acquireTokenByClientCredential({ scopes: [DV_SCOPE] });
    if (r?.accessToken) return r.accessToken;
  } catch {
    // fall through to the token already held
  }
  return dvToken;
};

// ---------------------------------------------------------------- Dataverse (DynamicsWebApi)
const dwa = new DynamicsWebApi({ serverUrl: DATAVERSE, onTokenRefresh: getDvToken });

await step("whoami", async () => {
  const r = await dwa.callFunction({ name: "WhoAmI" });
  expect(r && GUID.test(r.UserId ?? ""), `WhoAmI answered ${JSON.stringify(r).slice(0, 200)}`);
});

// Accounts and contacts carry a company (msdyn_company -> cdm_companies); the starting world
// of some scenarios has none yet, so the script makes one when it finds none.
let companyId = null;
await step("find_company", async () => {
  const r = await dwa.retrieveMultiple({ collection: "cdm_companies", select: ["cdm_companyid", "cdm_companycode"], top: 1 });
  expect(Array.isArray(r?.value), `cdm_companies answered ${JSON.stringify(r).slice(0, 200)}`);
  if (r.value.length) {
    companyId = r.value[0].cdm_companyid;
    return `cdm_companycode ${r.value[0].cdm_companycode}`;
  }
  const id = await dwa.create({ collection: "cdm_companies", data: { cdm_companycode: `C${run}`.slice(0, 6), cdm_name: `dwsim client tier ${run}` } });
  expect(GUID.test(id ?? ""), `create cdm_companies returned ${JSON.stringify(id)}, not an id from OData-EntityId`);
  companyId = id;
  return "none existed; created one";
});
const companyBind = () => (companyId ? { "msdyn_company@odata.bind": `cdm_companies(${companyId})` } : {});

let contactId = null;
await step("create_contact", async () => {
  const id = await dwa.create({ collection: "contacts", data: { firstname: "Ada", lastname: `Client ${run}`, ...companyBind() } });
  expect(GUID.test(id ?? ""), `create returned ${JSON.stringify(id)}, not the id from the OData-EntityId header`);
  contactId = id;
});

const accountNumber = `CT-${run}`;
let accountId = null;
await step("create_account_primarycontact", async () => {
  expect(contactId, "no contact (create_contact failed)");
  const id = await dwa.create({
    collection: "accounts",
    data: {
      name: `Client tier ${run}`,
      accountnumber: accountNumber,
      customertypecode: 3,
      ...companyBind(),
      "primarycontactid@odata.bind": `contacts(${contactId})`, // sent as "/contacts(<id>)"
    },
  });
  expect(GUID.test(id ?? ""), `create returned ${JSON.stringify(id)}`);
  accountId = id;
});
if (!accountId) {
  // Let the later steps test their own feature with an account made without primarycontactid.
  await step("create_account_fallback", async () => {
    const id = await dwa.create({
      collection: "accounts",
      data: { name: `Client tier ${run}`, accountnumber: accountNumber, customertypecode: 3, ...companyBind() },
    });
    expect(GUID.test(id ?? ""), `create returned ${JSON.stringify(id)}`);
    accountId = id;
    return "account without primarycontactid, for the steps below";
  });
}

await step("retrieve_select_expand_primarycontact", async () => {
  expect(accountId, "no account");
  const a = await dwa.retrieve({
    collection: "accounts",
    key: accountId,
    select: ["name", "accountnumber", "_primarycontactid_value"],
    expand: [{ property: "primarycontactid", select: ["contactid", "fullname"] }],
  });
  expect(a?.accountid === accountId, `retrieve answered accountid ${a?.accountid}`);
  expect(a._primarycontactid_value === contactId, `_primarycontactid_value is ${JSON.stringify(a._primarycontactid_value)}, expected ${contactId}`);
  expect(a.primarycontactid?.contactid === contactId, `expanded primarycontactid is ${JSON.stringify(a.primarycontactid)}`);
});

await step("create_contact_parentcustomer_account", async () => {
  expect(accountId, "no account");
  const id = await dwa.create({
    collection: "contacts",
    data: { firstname: "Grace", lastname: `Child ${run}`, ...companyBind(), "parentcustomerid_account@odata.bind": `accounts(${accountId})` },
  });
  expect(GUID.test(id ?? ""), `create returned ${JSON.stringify(id)}`);
  const c = await dwa.retrieve({ collection: "contacts", key: id, select: ["_parentcustomerid_value"], includeAnnotations: "*" });
  expect(c._parentcustomerid_value === accountId, `_parentcustomerid_value is ${JSON.stringify(c._parentcustomerid_value)}`);
  expect(
    c._parentcustomerid_value_LogicalName === "account",
    `lookuplogicalname annotation -> _parentcustomerid_value_LogicalName is ${JSON.stringify(c._parentcustomerid_value_LogicalName)}`,
  );
});

await step("update", async () => {
  expect(accountId, "no account");
  const r = await dwa.update({ collection: "accounts", key: accountId, data: { telephone1: "+1 555 0100" } });
  expect(r === true, `update returned ${JSON.stringify(r)} (false means 412 on If-Match: *)`);
  const a = await dwa.retrieve({ collection: "accounts", key: accountId, select: ["telephone1"] });
  expect(a.telephone1 === "+1 555 0100", `telephone1 reads back ${JSON.stringify(a.telephone1)}`);
});

await step("upsert_by_alternate_key", async () => {
  expect(companyId, "no company");
  const key = `accountnumber='UP-${run}',_msdyn_company_value=${companyId}`;
  const created = await dwa.upsert({ collection: "accounts", key, data: { name: `Upserted ${run}` } });
  expect(GUID.test(created ?? ""), `first upsert (create) returned ${JSON.stringify(created)}`);
  const again = await dwa.upsert({ collection: "accounts", key, data: { name: `Upserted again ${run}` } });
  expect(again === created, `second upsert (update) returned ${JSON.stringify(again)}, expected ${created}`);
  const a = await dwa.retrieve({ collection: "accounts", key, select: ["name"] });
  expect(a.name === `Upserted again ${run}`, `name reads back ${JSON.stringify(a.name)}`);
});

let total = null;
await step("count", async () => {
  const n = await dwa.count({ collection: "accounts" }); // GET accounts/$count, text/plain
  expect(Number.isInteger(n) && n > 0, `accounts/$count answered ${JSON.stringify(n)}`);
  const f = await dwa.count({ collection: "accounts", filter: `accountnumber eq '${accountNumber}'` }); // $count=true
  expect(f === 1, `$count=true with $filter gave @odata.count ${JSON.stringify(f)}`);
  total = n;
});

await step("retrieve_multiple_page_size_2", async () => {
  const p1 = await dwa.retrieveMultiple({ collection: "accounts", select: ["name"], maxPageSize: 2 });
  expect(p1?.value?.length === 2, `first page has ${p1?.value?.length} rows`);
  expect(p1.oDataNextLink, "no @odata.nextLink on a page of 2");
  const p2 = await dwa.retrieveMultiple({ collection: "accounts", select: ["name"], maxPageSize: 2 }, p1.oDataNextLink);
  expect(p2?.value?.length >= 1, `second page has ${p2?.value?.length} rows`);
  const ids1 = new Set(p1.value.map((a) => a.accountid));
  expect(!p2.value.some((a) => ids1.has(a.accountid)), "second page repeats rows of the first");
});

await step("retrieve_all", async () => {
  const r = await dwa.retrieveAll({ collection: "accounts", select: ["accountid"], maxPageSize: 2 });
  const ids = new Set(r.value.map((a) => a.accountid));
  expect(ids.size === r.value.length, "retrieveAll returned duplicates");
  if (total !== null) expect(r.value.length === total, `retrieveAll returned ${r.value.length} rows, $count said ${total}`);
});

await step("batch_create_and_retrieve", async () => {
  expect(accountId, "no account");
  dwa.startBatch();
  dwa.create({ collection: "contacts", data: { firstname: "Batch", lastname: `Contact ${run}`, ...companyBind() } });
  dwa.retrieve({ collection: "accounts", key: accountId, select: ["name"] });
  const results = await dwa.executeBatch();
  expect(Array.isArray(results) && results.length === 2, `executeBatch returned ${JSON.stringify(results).slice(0, 200)}`);
  expect(GUID.test(results[0] ?? ""), `create in a changeset gave ${JSON.stringify(results[0])}, not the id from its OData-EntityId`);
  expect(results[1]?.accountid === accountId, `retrieve in the batch gave ${JSON.stringify(results[1]).slice(0, 200)}`);
});

await step("update_stale_etag_412", async () => {
  expect(accountId, "no account");
  const before = await dwa.retrieve({ collection: "accounts", key: accountId, select: ["name"] });
  const etag = before["@odata.etag"];
  expect(etag, "the record has no @odata.etag");
  expect((await dwa.update({ collection: "accounts", key: accountId, data: { telephone1: "+1 555 0101" }, ifmatch: etag })) === true, "update with the current ETag failed");
  const stale = await dwa.update({ collection: "accounts", key: accountId, data: { telephone1: "+1 555 0102" }, ifmatch: etag });
  expect(stale === false, `update with the stale ETag returned ${JSON.stringify(stale)}; DynamicsWebApi returns false on 412`);
  const strict = new DynamicsWebApi({ serverUrl: DATAVERSE, onTokenRefresh: getDvToken, propagateErrors: true });
  try {
    await strict.update({ collection: "accounts", key: accountId, data: { telephone1: "+1 555 0103" }, ifmatch: etag });
    throw new StepError("update with the stale ETag succeeded");
  } catch (e) {
    if (e instanceof StepError) throw e;
    expect(e.status === 412, `stale ETag answered ${describe(e)}`);
  }
});

await step("formatted_values", async () => {
  expect(accountId, "no account");
  const a = await dwa.retrieve({
    collection: "accounts",
    key: accountId,
    select: ["customertypecode", "statecode"],
    includeAnnotations: "OData.Community.Display.V1.FormattedValue",
  });
  expect(a.customertypecode === 3, `customertypecode is ${JSON.stringify(a.customertypecode)}`);
  expect(typeof a.customertypecode_Formatted === "string" && a.customertypecode_Formatted, `customertypecode_Formatted is ${JSON.stringify(a.customertypecode_Formatted)}`);
  expect(a.statecode_Formatted === "Active", `statecode_Formatted is ${JSON.stringify(a.statecode_Formatted)}`);
});

await step("use_entity_names", async () => {
  // useEntityNames: DynamicsWebApi reads EntityDefinitions?$select=EntitySetName,LogicalName once.
  const named = new DynamicsWebApi({ serverUrl: DATAVERSE, onTokenRefresh: getDvToken, useEntityNames: true });
  const r = await named.retrieveMultiple({ collection: "account", select: ["name"], top: 1 });
  expect(r?.value?.length === 1, `retrieveMultiple by logical name answered ${JSON.stringify(r).slice(0, 200)}`);
});

// ---------------------------------------------------------------- F&O (plain fetch)
await step("fno_customers_cross_company", async () => {
  expect(fnoToken, "no F&O token");
  const res = await fetch(`${FNO}/data/CustomersV3?cross-company=true&$top=2`, {
    headers: { Authorization: `Bearer ${fnoToken}`, Accept: "application/json", "OData-Version": "4.0", "OData-MaxVersion": "4.0" },
  });
  const text = await res.text();
  expect(res.status === 200, `HTTP ${res.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  expect(Array.isArray(body.value) && body.value.length >= 1 && body.value.length <= 2, `value has ${body.value?.length} rows`);
  expect(body.value.every((c) => c.dataAreaId && c.CustomerAccount), "rows lack dataAreaId/CustomerAccount");
});

console.log(failures ? `${failures} step(s) failed` : "all steps passed");
process.exit(failures ? 1 : 0);
