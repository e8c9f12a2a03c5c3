// s3rver.js -- starts the pinned S3 protocol server (@20minutes/s3rver, which has no
// executable of its own) with the command-line arguments given, e.g.
//   node s3rver.js -d DIR -a 127.0.0.1 -p PORT -s --configure-bucket NAME
// Run it with NODE_OPTIONS=--openssl-legacy-provider: its continuation tokens use DES, and
// without the legacy provider every listing longer than one page answers 500.
// start-s3.sh is the usual way in; see ../../docs/readme-s3.md.
'use strict';

const path = require('path');

const cli = require(path.join(__dirname, 'node_modules', '@20minutes', 's3rver', 'lib', 'cli.js'));

cli.parseAsync(process.argv).catch((err) => {
  console.error('s3rver: ' + (err && err.message ? err.message : err));
  process.exit(1);
});
