// An independent SCIM 2.0 service for roster's sink tests: the npm
// packages scimmy (resources, schemas, filters, PATCH, /Bulk) and
// scimmy-routers (the HTTP endpoints) behind express, with an in-memory
// store of Users and Groups. roster is not involved in how it answers.
//
//   node server.js --port 0 --token T [--data FILE] [--bulk N]
//
// It prints one line "listening on PORT" when it accepts requests.
// --data keeps the store across restarts: it is read at start and written
// on SIGTERM/SIGINT (the test's "service restarted"). --bulk N advertises
// /Bulk with maxOperations N (0: not advertised). Besides SCIM it answers
// a few test controls under /_peer (the same token):
//   POST /_peer/fail {"status": 503}   answer every SCIM request so (0: stop)
//   GET  /_peer/stats                  requests served, by method and path
//
// express is pinned to 4: under express 5 req.query is read-only, so
// scimmy-routers' conversion of startIndex and count to numbers is lost
// and every list answers its first 20 resources.
import crypto from "node:crypto";
import fs from "node:fs";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const args = {port: process.env.SCIMPEER_PORT ?? "0", token: process.env.SCIMPEER_TOKEN ?? "",
    data: process.env.SCIMPEER_DATA ?? "", bulk: process.env.SCIMPEER_BULK ?? "0"};
for (let i = 2; i < process.argv.length; i += 2) {
    const key = process.argv[i].replace(/^--/, "");
    if (!(key in args) || process.argv[i + 1] === undefined) {
        console.error(`usage: node server.js --port N --token T [--data FILE] [--bulk N]; not understood: ${process.argv[i]}`);
        process.exit(2);
    }
    args[key] = process.argv[i + 1];
}
if (!args.token) {
    console.error("server.js: --token (or SCIMPEER_TOKEN) is required");
    process.exit(2);
}

// The store: plain objects by id, as the service's database would hold them.
let db = {users: {}, groups: {}};
if (args.data && fs.existsSync(args.data)) db = JSON.parse(fs.readFileSync(args.data, "utf8"));
function save() {
    if (!args.data) return;
    fs.writeFileSync(args.data + ".tmp", JSON.stringify(db));
    fs.renameSync(args.data + ".tmp", args.data);
}

const plain = (v) => JSON.parse(JSON.stringify(v));
const now = () => new Date().toISOString();
const notFound = (kind, id) => new SCIMMY.Types.Error(404, null, `${kind} ${id} not found`);

// list applies what the request asked: scimmy's own filter matching, then
// the page. scimmy would page the whole list itself, but only after
// turning every resource into its schema's form (milliseconds each): the
// page is cut here and the total handed to its ListResponse through the
// resource's constraints. A sorted list is left whole to scimmy.
function list(resource, all) {
    const matched = resource.filter ? resource.filter.match(all) : all;
    const {startIndex = 1, count = 20, sortBy} = resource.constraints ?? {};
    if (sortBy !== undefined || startIndex < 1) return matched;
    resource.constraints = {...resource.constraints, totalResults: matched.length};
    return matched.slice(startIndex - 1, startIndex - 1 + count);
}

// write creates (no id) or replaces (id) a resource; attributes the client
// did not send are gone after a PUT, as RFC 7644 §3.5.1 says.
function write(table, kind, resource, instance, unique) {
    const data = plain(instance);
    delete data.schemas;
    delete data.meta;
    delete data.id;
    const id = resource.id ?? crypto.randomUUID();
    const old = db[table][id];
    if (resource.id && !old) throw notFound(kind, id);
    if (unique) {
        const value = String(data[unique] ?? "").toLowerCase();
        for (const other of Object.values(db[table])) {
            if (other.id !== id && String(other[unique] ?? "").toLowerCase() === value) {
                throw new SCIMMY.Types.Error(409, "uniqueness", `${unique} "${data[unique]}" is already taken`);
            }
        }
    }
    const at = now();
    db[table][id] = {...data, id, meta: {created: old?.meta?.created ?? at, lastModified: at}};
    return db[table][id];
}

// withGroups adds each user's groups (read-only, RFC 7643 §4.1.2), from
// one pass over the groups.
function withGroups(users) {
    const ids = new Set(users.map((u) => u.id));
    const of = new Map();
    for (const g of Object.values(db.groups)) {
        for (const m of g.members ?? []) {
            if (!ids.has(m.value)) continue;
            if (!of.has(m.value)) of.set(m.value, []);
            of.get(m.value).push({value: g.id, display: g.displayName, type: "direct"});
        }
    }
    return users.map((u) => ({...u, groups: of.get(u.id) ?? []}));
}

const User = SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);
User.ingress((resource, instance) => {
    const u = write("users", "User", resource, instance, "userName");
    const {groups, ...out} = u;
    return out;
});
User.egress((resource) => {
    if (resource.id) {
        if (!db.users[resource.id]) throw notFound("User", resource.id);
        return withGroups([db.users[resource.id]])[0];
    }
    return withGroups(list(resource, Object.values(db.users)));
});
User.degress((resource) => {
    if (!db.users[resource.id]) throw notFound("User", resource.id);
    delete db.users[resource.id];
    for (const g of Object.values(db.groups)) g.members = (g.members ?? []).filter((m) => m.value !== resource.id);
});

const Group = SCIMMY.Resources.Group;
Group.ingress((resource, instance) => {
    for (const m of plain(instance).members ?? []) {
        if (!db.users[m.value] && !db.groups[m.value]) {
            throw new SCIMMY.Types.Error(400, "invalidValue", `member ${m.value} does not exist`);
        }
    }
    return write("groups", "Group", resource, instance, "");
});
Group.egress((resource) => {
    const all = Object.values(db.groups);
    if (resource.id) return db.groups[resource.id] ?? (() => { throw notFound("Group", resource.id); })();
    return list(resource, all);
});
Group.degress((resource) => {
    if (!db.groups[resource.id]) throw notFound("Group", resource.id);
    delete db.groups[resource.id];
    for (const g of Object.values(db.groups)) g.members = (g.members ?? []).filter((m) => m.value !== resource.id);
});

SCIMMY.Resources.declare(User, "User");
SCIMMY.Resources.declare(Group);

const maxOperations = Number(args.bulk);
const maxPayloadSize = 1 << 20;
SCIMMY.Config.set({bulk: {supported: maxOperations > 0, maxOperations: Math.max(maxOperations, 1), maxPayloadSize}});

const authorized = (req) => req.header("authorization") === `Bearer ${args.token}`;
const stats = {};
let failWith = 0;

const app = express();
app.use((req, res, next) => {
    const key = `${req.method} ${req.path.replace(/^\/scim\/v2/, "").replace(/\/[0-9a-f-]{36}$/, "/{id}")}`;
    stats[key] = (stats[key] ?? 0) + 1;
    next();
});
app.post("/_peer/fail", express.json({type: () => true}), (req, res) => {
    if (!authorized(req)) return res.sendStatus(401);
    failWith = Number(req.body?.status ?? 0);
    res.json({status: failWith});
});
app.get("/_peer/stats", (req, res) => {
    if (!authorized(req)) return res.sendStatus(401);
    res.json(stats);
});
app.use("/scim/v2", (req, res, next) => {
    if (failWith) {
        res.set("Retry-After", "0").status(failWith)
            .type("application/scim+json").send({schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: String(failWith), detail: "failing for the test"});
        return;
    }
    next();
});
// scimmy-routers sets the Config's bulk to supported; the peer's own
// setting is put back after it, so that --bulk 0 hides /Bulk.
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    docUri: "https://example.com/scimpeer",
    handler: (req) => {
        if (!authorized(req)) throw new Error("a valid bearer token is required");
        return "test";
    },
    context: () => ({}),
}));
SCIMMY.Config.set({bulk: {supported: maxOperations > 0, maxOperations: Math.max(maxOperations, 1), maxPayloadSize}});
const server = app.listen(Number(args.port), "127.0.0.1", () => {
    console.log(`listening on ${server.address().port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
        save();
        server.close();
        server.closeAllConnections?.();
        process.exit(0);
    });
}
