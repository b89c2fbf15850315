// The portal's stylesheet, served as /style.css (a module, so the single-file build carries it).
export const STYLE_CSS = `/* mtlsgate developer portal. Served as /style.css (the CSP allows styles from 'self' only). */
:root {
  --ink: #17212b;
  --muted: #5a6877;
  --line: #d8dee6;
  --bg: #f4f6f9;
  --card: #ffffff;
  --accent: #1f5fbf;
  --accent-dark: #174a96;
  --ok: #177245;
  --ok-bg: #e6f4ec;
  --warn: #8a5a00;
  --warn-bg: #fff4dc;
  --err: #b3261e;
  --err-bg: #fdecea;
  --focus: #ffbf47;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { font-size: 16px; }
body {
  margin: 0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink);
  background: var(--bg);
  line-height: 1.5;
}
a { color: var(--accent); }
a:hover { color: var(--accent-dark); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip-link { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; }
.skip-link:focus { left: 1rem; z-index: 10; }

.topbar { background: #0f2440; color: #fff; }
.topbar-inner { max-width: 68rem; margin: 0 auto; padding: .9rem 1.5rem; display: flex; align-items: center; gap: 2rem; }
.brand { color: #fff; text-decoration: none; font-weight: 700; font-size: 1.15rem; letter-spacing: .01em; display: flex; align-items: center; gap: .6rem; }
.brand-mark { display: inline-grid; place-items: center; width: 2rem; height: 2rem; border-radius: .5rem; background: var(--accent); font-size: .9rem; }
.brand-sub { font-weight: 400; color: #b9c8dc; }
.nav { display: flex; gap: 1.25rem; margin-left: auto; }
.nav a { color: #dce6f3; text-decoration: none; padding: .25rem 0; border-bottom: 2px solid transparent; }
.nav a:hover, .nav a[aria-current="page"] { color: #fff; border-bottom-color: #7fb0ff; }

main { max-width: 68rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 0 0 .75rem; }
h3 { font-size: 1.05rem; margin: 0; }
.lede { color: var(--muted); font-size: 1.08rem; max-width: 46rem; margin: 0 0 2rem; }

.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: 1.5rem; margin-bottom: 1.5rem; box-shadow: 0 1px 2px rgba(15, 36, 64, .04); }
.layout { display: grid; grid-template-columns: minmax(0, 1fr) 21rem; gap: 1.5rem; align-items: start; }
@media (max-width: 860px) { .layout { grid-template-columns: 1fr; } }
.aside h2 { font-size: 1.05rem; }
.aside ol { padding-left: 1.2rem; margin: 0; }
.aside li { margin-bottom: .6rem; color: var(--muted); }
.aside code, .hint code { font-family: var(--mono); font-size: .85em; background: #eef1f5; padding: .05rem .3rem; border-radius: .25rem; }
.aside code { overflow-wrap: anywhere; }
.hint code { white-space: nowrap; }
.aside pre { font-family: var(--mono); font-size: .78rem; background: #eef1f5; padding: .5rem .6rem; border-radius: .35rem; white-space: pre-wrap; overflow-wrap: anywhere; margin: .35rem 0 0; color: var(--ink); }

.step { display: flex; align-items: baseline; gap: .6rem; }
.step-no { display: inline-grid; place-items: center; width: 1.6rem; height: 1.6rem; border-radius: 50%; background: var(--accent); color: #fff; font-size: .85rem; font-weight: 700; flex: none; }

fieldset { border: 0; margin: 0 0 1.75rem; padding: 0; }
legend { padding: 0; margin-bottom: .75rem; font-weight: 700; font-size: 1.1rem; }
.field { margin-bottom: 1.75rem; }
label.label { display: block; font-weight: 700; font-size: 1.1rem; margin-bottom: .25rem; }
.hint { color: var(--muted); margin: 0 0 .5rem; font-size: .95rem; }
input[type="text"], input[type="email"], input[type="search"], textarea {
  width: 100%; font: inherit; color: inherit; padding: .6rem .75rem; border: 2px solid #8996a5; border-radius: .4rem; background: #fff;
}
textarea { font-family: var(--mono); font-size: .85rem; min-height: 11rem; resize: vertical; }
input[type="file"] { font: inherit; margin-top: .5rem; }
input[aria-invalid="true"], textarea[aria-invalid="true"] { border-color: var(--err); }
.field-error { color: var(--err); font-weight: 700; margin: 0 0 .4rem; }
.field.has-error { border-left: 4px solid var(--err); padding-left: 1rem; }

.plans { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: 1rem; }
.plan { position: relative; border: 2px solid var(--line); border-radius: .6rem; padding: 1rem 1rem 1rem 2.75rem; background: #fff; }
.plan label { cursor: pointer; }
.plan label::after { content: ""; position: absolute; inset: 0; }
.plan-name { font-weight: 700; font-size: 1.05rem; }
.plan:hover { border-color: #9bb4d8; }
.plan input { position: absolute; z-index: 1; left: 1rem; top: 1.2rem; width: 1.1rem; height: 1.1rem; accent-color: var(--accent); }
.plan:has(input:checked) { border-color: var(--accent); background: #f3f7fd; }
.plan:has(input:focus-visible) { outline: 3px solid var(--focus); outline-offset: 2px; }
.plan p { margin: .35rem 0 .5rem; color: var(--muted); font-size: .95rem; }
.plan ul { margin: 0; padding: 0; list-style: none; font-size: .85rem; }
.plan li code { font-family: var(--mono); }
.badge { display: inline-block; font-size: .75rem; font-weight: 700; text-transform: uppercase; letter-spacing: .04em; padding: .1rem .5rem; border-radius: 1rem; vertical-align: middle; }
.badge-ok { color: var(--ok); background: var(--ok-bg); }
.badge-wait { color: var(--warn); background: var(--warn-bg); }

.button { display: inline-block; font: inherit; font-weight: 700; color: #fff; background: var(--accent); border: 0; border-radius: .4rem; padding: .7rem 1.4rem; cursor: pointer; text-decoration: none; box-shadow: 0 2px 0 var(--accent-dark); }
.button:hover { background: var(--accent-dark); color: #fff; }
.button-secondary { background: #e7ecf3; color: var(--ink); box-shadow: 0 2px 0 #c4ccd6; }
.button-secondary:hover { background: #d9e0ea; color: var(--ink); }

.error-summary { border: 3px solid var(--err); border-radius: .6rem; background: var(--err-bg); padding: 1rem 1.25rem; margin-bottom: 1.5rem; }
.error-summary h2 { color: var(--err); margin-bottom: .5rem; }
.error-summary ul { margin: 0; padding-left: 1.2rem; }
.error-summary a { color: var(--err); font-weight: 700; }
.error-summary pre { white-space: pre-wrap; font-family: var(--mono); font-size: .8rem; background: #fff; padding: .75rem; border-radius: .4rem; overflow-x: auto; }

.banner { border-radius: .75rem; padding: 1.25rem 1.5rem; margin-bottom: 1.5rem; border: 1px solid; }
.banner h1 { margin-bottom: .25rem; }
.banner p { margin: 0; }
.banner-ok { background: var(--ok-bg); border-color: #a9d8bd; }
.banner-ok h1 { color: var(--ok); }
.banner-wait { background: var(--warn-bg); border-color: #edd08f; }
.banner-wait h1 { color: var(--warn); }

dl.facts { display: grid; grid-template-columns: 12rem minmax(0, 1fr); gap: .6rem 1rem; margin: 0; }
dl.facts dt { font-weight: 700; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.mono { font-family: var(--mono); font-size: .9rem; }
pre.command { background: #0f2440; color: #e8eef7; padding: 1rem 1.25rem; border-radius: .5rem; font-family: var(--mono); font-size: .9rem; white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0 1rem; }

table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .6rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.search { display: flex; gap: .75rem; align-items: flex-end; flex-wrap: wrap; }
.search .field { flex: 1 1 18rem; margin: 0; }
.empty { color: var(--muted); }
footer { max-width: 68rem; margin: 0 auto; padding: 0 1.5rem 2rem; color: var(--muted); font-size: .85rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.nav { align-items: center; }
.signout { display: flex; align-items: center; gap: .5rem; margin: 0; color: #dce6f3; font-size: .9rem; }
.link-button { font: inherit; color: #fff; background: none; border: 1px solid #7fb0ff; border-radius: .3rem; padding: .15rem .6rem; cursor: pointer; }
.mode-banner { max-width: 68rem; margin: 1rem auto 0; padding: .6rem 1rem; background: var(--warn-bg); color: var(--warn); border: 1px solid #edd08f; border-radius: .5rem; font-size: .9rem; }
.badge-off { color: var(--muted); background: #e7ecf3; }
.button-danger { background: var(--err); box-shadow: 0 2px 0 #7f1b15; }
.button-danger:hover { background: #8f1e18; }
form.inline { display: inline; }
td form { margin: 0; }
td .button { padding: .35rem .8rem; font-size: .85rem; }
.fingerprint { word-break: break-all; font-size: .8rem; }
`;
