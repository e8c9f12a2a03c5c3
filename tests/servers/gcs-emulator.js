#!/usr/bin/env node
// gcs-emulator.js -- runs the Cloud Storage emulator of firebase-tools (JSON API) on
// 127.0.0.1 for Nova's tests, without the firebase CLI (which wants Java and a download).
//
// Usage: node gcs-emulator.js --dir DIR [--port N] [--port-file FILE] [--project ID]
//                              [--parent-pid PID] [--max-seconds S]
// It exits by itself once --parent-pid is gone or after --max-seconds (0 = never).
//
// The emulator keeps objects in memory; this wrapper makes them survive a restart (the
// tests kill the server in the middle of a backup and start it again): every finished
// upload is recorded under DIR/state (blobs/ID and metadata/ID.json, ID being the
// URL-encoded "bucket/object") before the client gets its answer, every delete removes
// the record, and a new emulator on the same DIR loads the records first. A blob is
// written before its metadata, so a kill between the two leaves no half-object. The
// emulator's own scratch files go to DIR/tmp (TMPDIR), so several instances never share
// them. It binds 127.0.0.1 only, reports nothing anywhere (no telemetry) and never starts
// the Java rules runtime: every request is treated as an admin's.
"use strict";

const fs = require("fs");
const path = require("path");

function parseArgs(argv) {
  const args = { port: 0, project: "nova-test", parentPid: 0, maxSeconds: 0 };
  for (let i = 2; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === "--dir") args.dir = value;
    else if (key === "--port") args.port = Number(value);
    else if (key === "--port-file") args.portFile = value;
    else if (key === "--project") args.project = value;
    else if (key === "--parent-pid") args.parentPid = Number(value);
    else if (key === "--max-seconds") args.maxSeconds = Number(value);
    else {
      console.error(`gcs-emulator.js: unknown argument ${key}`);
      process.exit(2);
    }
    i++;
  }
  if (!args.dir) {
    console.error("gcs-emulator.js: --dir DIR is required");
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv);
const stateDir = path.join(args.dir, "state");
const blobDir = path.join(stateDir, "blobs");
const metaDir = path.join(stateDir, "metadata");
const tmpDir = path.join(args.dir, "tmp");
for (const d of [blobDir, metaDir, tmpDir]) fs.mkdirSync(d, { recursive: true });
process.env.TMPDIR = tmpDir; // read by the emulator's constructor (os.tmpdir())

const { StorageEmulator } = require("firebase-tools/lib/emulator/storage");
const { EmulatorRegistry } = require("firebase-tools/lib/emulator/registry");
const { createApp } = require("firebase-tools/lib/emulator/storage/server");
const { StoredFile } = require("firebase-tools/lib/emulator/storage/files");
const { StoredFileMetadata } = require("firebase-tools/lib/emulator/storage/metadata");

function recordId(bucket, name) {
  return encodeURIComponent(`${bucket}/${name}`);
}

function writeAtomically(file, write) {
  const tmp = `${file}.tmp-${process.pid}`;
  write(tmp);
  fs.renameSync(tmp, file);
}

function persistUpload(layer, metadata) {
  const id = recordId(metadata.bucket, metadata.name);
  const source = layer._persistence.getDiskPath(layer.path(metadata.bucket, metadata.name));
  writeAtomically(path.join(blobDir, id), (tmp) => {
    try {
      fs.linkSync(source, tmp);
    } catch (err) {
      fs.copyFileSync(source, tmp);
    }
  });
  writeAtomically(path.join(metaDir, `${id}.json`), (tmp) =>
    fs.writeFileSync(tmp, StoredFileMetadata.toJSON(metadata)),
  );
}

function forgetObject(bucket, name) {
  const id = recordId(bucket, name);
  fs.rmSync(path.join(metaDir, `${id}.json`), { force: true });
  fs.rmSync(path.join(blobDir, id), { force: true });
}

function loadState(layer) {
  let count = 0;
  for (const entry of fs.readdirSync(metaDir)) {
    if (!entry.endsWith(".json")) continue; // a ".tmp-PID" left by a kill
    const id = entry.slice(0, -".json".length);
    const blob = path.join(blobDir, id);
    if (!fs.existsSync(blob)) continue;
    const metadata = StoredFileMetadata.fromJSON(
      fs.readFileSync(path.join(metaDir, entry), "utf-8"),
      layer._cloudFunctions,
    );
    const key = layer.path(metadata.bucket, metadata.name);
    layer.createBucket(metadata.bucket);
    layer._persistence.copyFromExternalPath(blob, key);
    layer._files.set(key, new StoredFile(metadata));
    count++;
  }
  return count;
}

function makeDurable(layer) {
  const upload = layer.uploadObject.bind(layer);
  layer.uploadObject = async (pending) => {
    const metadata = await upload(pending);
    persistUpload(layer, metadata);
    return metadata;
  };
  const deleteFile = layer.deleteFile.bind(layer);
  layer.deleteFile = (bucketId, objectId) => {
    const deleted = deleteFile(bucketId, objectId);
    if (deleted) forgetObject(bucketId, objectId);
    return deleted;
  };
}

async function main() {
  const emulator = new StorageEmulator({
    projectId: args.project,
    host: "127.0.0.1",
    port: args.port,
    rules: [],
    auto_download: false,
  });
  EmulatorRegistry.set(emulator.getName(), emulator);
  const layer = emulator.adminStorageLayer;
  const loaded = loadState(layer);
  makeDurable(layer);
  const app = await createApp(args.project, emulator);
  const server = app.listen(args.port, "127.0.0.1", () => {
    const port = server.address().port;
    emulator.args.port = port;
    if (args.portFile) writeAtomically(args.portFile, (tmp) => fs.writeFileSync(tmp, `${port}\n`));
    console.log(`gcs emulator on 127.0.0.1:${port} (${loaded} objects loaded from ${stateDir})`);
  });
  const stop = () => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const started = Date.now();
  setInterval(() => {
    if (args.maxSeconds > 0 && Date.now() - started > args.maxSeconds * 1000) stop();
    if (args.parentPid > 0) {
      try {
        process.kill(args.parentPid, 0);
      } catch (err) {
        stop();
      }
    }
  }, 500).unref();
}

main().catch((err) => {
  console.error(`gcs-emulator.js: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
