// Bundles the pages' libraries with esbuild and vendors them into each service's static/vendor/ folder.
// Run by `make assets` (and so `make install`); the output is committed, so `make run` works without node.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const targets = {
  "services/api/static/vendor": ["map", "chart"],
  "services/register/static/vendor": ["map"],
};
const licences = {
  map: [["leaflet", "LICENSE"], ["leaflet.markercluster", "MIT-LICENCE.txt"]],
  chart: [["uplot", "LICENSE"]],
};

for (const [folder, bundles] of Object.entries(targets)) {
  const outdir = join(root, folder);
  mkdirSync(outdir, { recursive: true });
  for (const name of bundles) {
    await build({
      entryPoints: [join(here, "src", `${name}.js`), join(here, "src", `${name}.css`)],
      outdir, bundle: true, minify: true, format: "iife", target: ["es2020"], legalComments: "inline",
      // Leaflet's CSS names its marker and layer images; the pages draw their own markers, so inline them.
      loader: { ".png": "dataurl", ".svg": "dataurl" }, logLevel: "warning",
    });
    for (const [pkg, file] of licences[name]) {
      copyFileSync(join(here, "node_modules", pkg, file), join(outdir, `LICENSE.${pkg}.txt`));
    }
  }
  const versions = Object.fromEntries(bundles.flatMap((name) => licences[name]).map(([pkg]) =>
    [pkg, JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"))).version]));
  writeFileSync(join(outdir, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
}
