// The `--name=value` options of the bench scripts (ab.cjs, gram.bench.cjs).
'use strict';

/** A reader of `--name=value` in argv: arg(name, default) → the value, or the default. */
function argReader(argv) {
  return (name, dflt) => {
    const a = argv.find((s) => s.startsWith(`--${name}=`));
    return a ? a.slice(name.length + 3) : dflt;
  };
}

module.exports = { argReader };
