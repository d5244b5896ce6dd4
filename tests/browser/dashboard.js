// The dashboard in a real browser (Debian's Chromium driven by playwright-core).
// Run by tests/e2e/test_dashboard.py, which starts the server and passes:
//   JR_URL      the server's base URL        JR_KEY    an API key of a funded org
//   JR_ADMIN    the admin token              JR_OUT    where screenshots go
//   JR_CHROMIUM the browser                  NODE_PATH where playwright-core is
// Prints "ok: …" per check and exits non-zero on the first failure.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const URL_ = process.env.JR_URL, KEY = process.env.JR_KEY, ADMIN = process.env.JR_ADMIN;
const OUT = process.env.JR_OUT, CHROMIUM = process.env.JR_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

function check(cond, what) {
	if (!cond) throw new Error('FAIL: ' + what);
	console.log('ok: ' + what);
}

async function api(method, p, body, token) {
	const res = await fetch(URL_ + p, {
		method, headers: { 'Authorization': 'Bearer ' + (token || KEY), 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const data = await res.json();
	if (!res.ok) throw new Error(`${method} ${p} → ${res.status} ${JSON.stringify(data)}`);
	return data;
}

async function launch() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobring-chromium-'));
	const ctx = await chromium.launchPersistentContext(dir, {
		executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 860 },
	});
	const page = ctx.pages()[0] || await ctx.newPage();
	const problems = [];
	page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
	page.on('pageerror', (e) => problems.push('page error: ' + e.message));
	return { ctx, page, problems, close: async () => { await ctx.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function row(page, id) {
	return page.evaluate((jid) => {
		const tr = document.querySelector(`#jobs tr[data-job-id="${jid}"]`);
		if (!tr) return null;
		return {
			status: tr.dataset.status, type: tr.children[1].textContent,
			pct: tr.querySelector('.pct').textContent, error: tr.children[5].textContent,
		};
	}, id);
}

// Watch a job's row until it is in `final`; returns every status seen on the page.
async function follow(page, id, final, timeoutMs) {
	const seen = [];
	const end = Date.now() + timeoutMs;
	while (Date.now() < end) {
		const r = await row(page, id);
		if (r && seen[seen.length - 1] !== r.status) seen.push(r.status);
		if (r && r.status === final) return { seen, row: r };
		await page.waitForTimeout(100);
	}
	throw new Error(`FAIL: ${id} did not reach ${final} on the page; saw ${JSON.stringify(seen)}`);
}

// The page's counts by status settle on the API's totals.
async function countsSettle(page, what) {
	const want = {};
	for (const st of ['waiting', 'dispatched', 'running', 'complete', 'failed', 'cancelled'])
		want[st] = String((await api('GET', '/jobs?limit=1&status=' + st)).meta.total);
	await page.waitForFunction((w) => Object.keys(w).every((st) => document.getElementById('count-' + st).textContent === w[st]),
		want, { timeout: 15000 }).catch(() => {});
	const got = await page.evaluate((w) => Object.keys(w).map((st) => st + ' ' + document.getElementById('count-' + st).textContent), want);
	check(got.every((g) => g.split(' ')[1] === want[g.split(' ')[0]]), `${what}: counts match the API (${got.join(', ')})`);
}

async function signIn(b, url, admin) {
	const page = b.page;
	await page.goto(url);
	await page.waitForSelector('#login-form', { state: 'visible' });
	await page.fill('#key', 'rb_live_not_a_key');
	await page.click('#login-submit');
	await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
	check(/not accepted/.test(await page.textContent('#login-error')) && await page.isHidden('#app'),
		'a wrong key is refused on the login form');
	b.problems.length = 0;	/* Chromium logs the 401 we asked for */
	await page.fill('#key', KEY);
	if (admin) await page.fill('#admin', admin);
	await page.click('#login-submit');
	await page.waitForSelector('#app', { state: 'visible', timeout: 10000 });
	check(true, 'signed in with the API key');
}

async function liveRun() {
	const b = await launch();
	const page = b.page;
	await signIn(b, URL_ + '/dashboard', ADMIN);
	const me = (await api('GET', '/orgs/current')).data;
	check((await page.textContent('#org')).includes(me.org.name), 'the header names the org');
	const store = await page.evaluate(() => ({
		session: Object.keys(sessionStorage), local: localStorage.length, cookie: document.cookie,
	}));
	check(store.session.includes('jobring.apiKey') && store.local === 0 && store.cookie === '',
		'the key is in sessionStorage only (no localStorage, no cookie)');
	await page.evaluate(() => { window.__noReload = 'still here'; });

	// the realtime socket comes up; when it cannot, the page says it polls
	let mode = '';
	try {
		await page.waitForFunction(() => document.getElementById('transport').dataset.mode === 'live', null, { timeout: 8000 });
		mode = 'live';
	} catch (e) {
		mode = await page.getAttribute('#transport', 'data-mode');
	}
	check(mode === 'live', `the realtime WebSocket is up (badge: ${mode})`);

	const bal0 = (await api('GET', '/billing/balance')).data.balance;
	await page.waitForFunction((b) => document.getElementById('balance').dataset.nanodollars === String(b), bal0, { timeout: 5000 });
	check(true, 'the balance shows the org balance');

	const job = (await api('POST', '/jobs', { type: 'fake', params: { mode: 'ok', delay: 2.5, computeMs: 2000 } })).data;
	await page.waitForSelector(`#jobs tr[data-job-id="${job.id}"]`, { timeout: 5000 });
	check(true, 'a job submitted through the API appears on the page');
	const f = await follow(page, job.id, 'complete', 20000);
	check(f.seen.length >= 2 && f.seen[f.seen.length - 1] === 'complete' && f.row.pct === '100%' && f.row.type === 'fake',
		`…and moves to complete with a full bar (statuses seen: ${f.seen.join(' → ')})`);
	check(f.seen.includes('running'), 'the running state was shown on the way');

	// a job with an output file: the row links to it, and the link downloads it
	const outJob = (await api('POST', '/jobs', { type: 'fake', params: { mode: 'ok',
		upload: { name: 'result.txt', text: 'hello from the dashboard test\n' } } })).data;
	await follow(page, outJob.id, 'complete', 20000);
	await page.waitForSelector(`#jobs tr[data-job-id="${outJob.id}"] a.out`, { timeout: 8000 });
	const href = await page.getAttribute(`#jobs tr[data-job-id="${outJob.id}"] a.out`, 'href');
	const got = await page.evaluate(async (u) => (await fetch(u)).text(), href);
	check(/\/dl\//.test(href) && got === 'hello from the dashboard test\n',
		'a completed job with a file links its output, and the link downloads it');

	const bal1 = (await api('GET', '/billing/balance')).data.balance;
	check(bal1 < bal0, 'the job was charged');
	await page.waitForFunction((b) => document.getElementById('balance').dataset.nanodollars === String(b), bal1, { timeout: 8000 });
	check(true, 'the balance on the page follows the charge');
	await page.waitForFunction(() => Number(document.getElementById('count-complete').textContent) >= 1, null, { timeout: 15000 });
	check(true, 'the complete count went up');

	// a job that fails its dispatch lands in the DLQ; requeue it from the page
	const bad = (await api('POST', '/jobs', { type: 'fake', params: { mode: 'flaky', bad: 2, how: '500' } })).data;
	await page.waitForSelector(`#dlq tr[data-dlq-id="${bad.id}"]`, { timeout: 20000 });
	const failed = await row(page, bad.id);
	check(failed && failed.status === 'failed' && /DISPATCH_EXHAUSTED/.test(failed.error),
		'a job whose dispatch is exhausted shows failed with its error and sits in the DLQ table');
	await page.screenshot({ path: path.join(OUT, 'dashboard-dlq.png'), fullPage: true });
	await page.click(`#dlq tr[data-dlq-id="${bad.id}"] button.requeue`);
	await page.waitForSelector(`#dlq tr[data-dlq-id="${bad.id}"]`, { state: 'detached', timeout: 10000 });
	check(true, 'Requeue takes it out of the DLQ');
	const g = await follow(page, bad.id, 'complete', 20000);
	check(g.row.error === '—', `the requeued job completes on the page (${g.seen.join(' → ')})`);
	await countsSettle(page, 'live');

	// the socket goes down (kill -9 of the notifier, whose hub holds it): the page
	// polls until the supervisor has restarted it, then goes live again
	const run = JSON.parse(fs.readFileSync(process.env.JR_RUNFILE, 'utf8'));
	process.kill(run.actors.notifier, 'SIGKILL');
	await page.waitForFunction(() => document.getElementById('transport').dataset.mode === 'poll', null, { timeout: 10000 });
	check(true, 'the socket dropped: the badge says polling');
	const p = (await api('POST', '/jobs', { type: 'fake', params: { mode: 'ok', delay: 1, computeMs: 500 } })).data;
	const h = await follow(page, p.id, 'complete', 20000);
	check(true, `while it is down, polling shows a new job through to complete (${h.seen.join(' → ')})`);
	await page.waitForFunction(() => document.getElementById('transport').dataset.mode === 'live', null, { timeout: 30000 });
	check(true, 'the page reconnects and is live again');
	b.problems.splice(0, b.problems.length, ...b.problems.filter((x) => !/WebSocket/.test(x)));

	check(await page.evaluate(() => window.__noReload) === 'still here', 'all of it without a reload');
	await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });

	// the key survives a reload of the tab; signing out forgets it
	await page.reload();
	await page.waitForSelector('#app', { state: 'visible', timeout: 10000 });
	check(await page.isHidden('#login'), 'a reload of the tab keeps the session');
	await page.click('#logout');
	await page.waitForSelector('#login-form', { state: 'visible' });
	check(await page.evaluate(() => sessionStorage.length) === 0, 'signing out clears sessionStorage');
	check(b.problems.length === 0, 'no console errors or page errors: ' + b.problems.join(' | '));
	await b.close();
}

async function pollRun() {
	const b = await launch();
	const page = b.page;
	await signIn(b, URL_ + '/dashboard?transport=poll', '');
	check(await page.getAttribute('#transport', 'data-mode') === 'poll' && /Polling every 2 s/.test(await page.textContent('#transport')),
		'?transport=poll: no WebSocket, the badge says it polls every 2 s');
	check(await page.isVisible('#dlq-form'), 'without an admin token the DLQ card offers the token field');
	const job = (await api('POST', '/jobs', { type: 'fake', params: { mode: 'ok', delay: 3, computeMs: 1000 } })).data;
	await page.waitForSelector(`#jobs tr[data-job-id="${job.id}"]`, { timeout: 5000 });
	check(true, 'polling: the new job appears');
	const f = await follow(page, job.id, 'complete', 20000);
	check(f.seen.length >= 2 && f.row.pct === '100%', `polling: it moves to complete (${f.seen.join(' → ')})`);
	const counts = await page.evaluate(() => ['waiting', 'dispatched', 'running', 'complete', 'failed', 'cancelled']
		.map((s) => document.getElementById('count-' + s).textContent));
	check(counts.every((c) => /^\d+$/.test(c)), 'polling: counts by status are shown: ' + counts.join(' '));
	await countsSettle(page, 'polling');
	// the admin token can be given later, in the DLQ card
	await page.fill('#dlq-admin', 'wrong-token');
	await page.click('#dlq-form button');
	await page.waitForFunction(() => /rejected/.test(document.getElementById('dlq-error').textContent), null, { timeout: 5000 });
	check(true, 'a wrong admin token is reported in the DLQ card');
	b.problems.length = 0;	/* its 401 */
	await page.fill('#dlq-admin', ADMIN);
	await page.click('#dlq-form button');
	await page.waitForSelector('#dlq-wrap', { state: 'visible', timeout: 8000 });
	check(true, 'with the admin token the DLQ table shows');
	await page.screenshot({ path: path.join(OUT, 'dashboard-poll.png'), fullPage: true });
	check(b.problems.length === 0, 'no console errors or page errors: ' + b.problems.join(' | '));
	await b.close();
}

(async () => {
	await liveRun();
	await pollRun();
	console.log('dashboard: all checks passed');
})().catch((e) => {
	console.log(String(e && e.message ? e.message : e));
	process.exit(1);
});
