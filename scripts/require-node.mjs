// Plain JavaScript on purpose: it must run, and say what to install, on a Node too old to run the
// project's TypeScript sources, which Node runs without a flag only from 22.18 (22.12-22.17 need
// --experimental-strip-types, older ones cannot at all).
export const NODE_FLOOR = '22.18.0';

/** Why `version` (e.g. "v22.17.1") cannot run the project, or undefined when it can. */
export function nodeFloorProblem(version) {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number);
  const [floorMajor, floorMinor, floorPatch] = NODE_FLOOR.split('.').map(Number);
  const atLeast =
    major !== floorMajor ? major > floorMajor : minor !== floorMinor ? minor > floorMinor : patch >= floorPatch;
  if (atLeast) return undefined;
  return (
    `Node.js ${version} is too old: this project runs its TypeScript sources directly, which needs Node.js >= ${NODE_FLOOR}.\n` +
    `Install a current Node.js 22 or newer (https://nodejs.org, or \`npm i -g --prefix /usr/local node@22\`), then run the command again.`
  );
}

const problem = nodeFloorProblem(process.version);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
