/* Trubka call tracking: shows each visitor their own number. No dependencies, ES5; any failure
   leaves the page as it was (the site's own number, visible). */
(function (w, d) {
  var C = /*CONFIG*/null, me = d.currentScript, HIDE = 'trubka-hide', SEL, base, vid, cur, obs, last, used = +new Date();

  function unhide() {
    var s = d.getElementById(HIDE);
    if (s) s.parentNode.removeChild(s);
  }
  function safe(f) {
    return function (a) {
      try { f(a); } catch (e) { unhide(); }
    };
  }
  function cookie(n) {
    var m = d.cookie.match(new RegExp('(?:^|; )' + n + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : '';
  }
  function post(path, body, done) {
    try {
      var x = new XMLHttpRequest();
      x.open('POST', base + path, true);
      // text/plain keeps it a "simple" CORS request: no preflight round trip.
      x.setRequestHeader('Content-Type', 'text/plain');
      x.timeout = 5000;
      x.onload = function () {
        var r = null;
        try { if (x.status == 200) r = JSON.parse(x.responseText); } catch (e) {}
        done(r);
      };
      x.onerror = x.ontimeout = function () { done(null); };
      x.send(JSON.stringify(body));
    } catch (e) { done(null); }
  }
  function ids(o) {
    o.metrika_client_id = cookie('_ym_uid');
    o.roistat_visit = cookie('roistat_visit');
    o.ga = cookie('_ga');
    return o;
  }
  function nat(s) { return s.replace(/\D/g, '').slice(-10); }

  // The number in any common written form: +7 (495) 123-45-67, 8 495 1234567, 84951234567 …
  function pattern(n) {
    var sep = '[\\s\\u00a0\\u2009\\u202f()\\-\\u2010-\\u2015.]*', s = '(?:(?:\\+\\s*7|8)' + sep + ')?\\(?';
    for (var i = 0; i < 10; i++) s += (i ? sep : '') + n.charAt(i);
    return new RegExp('(^|[^\\d+])(' + s + ')(?!\\d)', 'g');
  }
  // Put the new digits into the old writing: "8 (495) 123-45-67" stays "8 (4xx) xxx-xx-xx".
  function rewrite(text, n) {
    var skip = text.replace(/\D/g, '').length - 10, j = 0, out = '';
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      out += ch >= '0' && ch <= '9' && skip-- <= 0 ? n.charAt(j++) : ch;
    }
    return out;
  }

  function swap(root, full, shown) {
    var n = nat(full);
    var olds = [nat(C.n)], i, node, list = [], walker;
    if (cur && olds[0] != cur) olds.push(cur);
    if (root.nodeType == 3) list.push(root);
    else {
      walker = d.createTreeWalker(root, 4, null);
      while ((node = walker.nextNode())) {
        if (!/^(SCRIPT|STYLE|TEXTAREA|NOSCRIPT)$/.test(node.parentNode.nodeName)) list.push(node);
      }
    }
    for (i = 0; i < olds.length; i++) {
      if (olds[i] == n) continue;
      var re = pattern(olds[i]);
      for (var k = 0; k < list.length; k++) {
        var v = list[k].nodeValue;
        re.lastIndex = 0;
        if (re.test(v)) {
          list[k].nodeValue = v.replace(re, function (a, pre, num) { return pre + rewrite(num, n); });
        }
      }
    }
    if (root.nodeType != 1) return;
    var tel = 'a[href^="tel:"],' + SEL, els = [].slice.call(root.querySelectorAll(tel)), el, marked;
    if (root.matches && root.matches(tel)) els.push(root);
    for (i = 0; i < els.length; i++) {
      el = els[i];
      marked = el.matches(SEL);
      var href = el.getAttribute('href') || '';
      if (/^tel:/i.test(href) && (marked || olds.indexOf(nat(href)) >= 0)) el.setAttribute('href', 'tel:+' + full);
      // A marked element written some other way gets the number in the configured mask.
      var text = el.textContent;
      if (marked && !el.children.length && nat(text) != n && /\d{5}/.test(text.replace(/\D/g, ''))) {
        el.textContent = shown;
      }
    }
  }

  function show(r) {
    if (!r || !r.number) return;
    last = r;
    var full = r.number.replace(/\D/g, ''), root = d.documentElement;
    swap(root, full, r.formatted || r.number);
    cur = nat(full);
    unhide();
    // Content added later (menus, popups, SPA pages) gets the number too.
    if (!obs && w.MutationObserver) {
      obs = new MutationObserver(safe(function (records) {
        var f = last.number.replace(/\D/g, '');
        for (var i = 0; i < records.length; i++) {
          for (var j = 0; j < records[i].addedNodes.length; j++) {
            var a = records[i].addedNodes[j];
            if (a.nodeType == 1 || a.nodeType == 3) swap(a, f, last.formatted || last.number);
          }
        }
      }));
      obs.observe(root, { childList: true, subtree: true });
    }
  }

  // The widgets (callback, messengers) come in a second script once the page has settled.
  function widget() {
    if (C.w == null || C.v) return;
    C.v = vid;
    C.b = base;
    var go = function () {
      setTimeout(function () {
        var s = d.createElement('script');
        s.async = true;
        s.src = base + '/ct/widget.js';
        d.head.appendChild(s);
      }, C.w);
    };
    d.readyState == 'complete' ? go() : w.addEventListener('load', go);
  }

  function visited(r) {
    if (r && r.visit_id) {
      vid = r.visit_id;
      widget();
      d.cookie = C.k + '=' + vid + ';path=/;max-age=' + C.d * 86400 + ';SameSite=Lax' +
        (C.m ? ';domain=' + C.m : '');
    }
    show(r);
    if (d.readyState == 'loading') d.addEventListener('DOMContentLoaded', safe(function () { show(r); }));
  }

  // Ping while the page is visible and in use: a tab left open does not hold a number for hours.
  function beat() {
    if (vid && !d.hidden && new Date() - used < C.a * 1000) {
      post('/ct/v1/ping', ids({ visit_id: vid }), safe(show));
    }
  }
  function touched() {
    var idle = new Date() - used >= C.a * 1000;
    used = +new Date();
    if (idle) beat();
  }

  // Ask for a number (once): on load, or with `after_interaction` at the first scroll, pointer,
  // key or touch on a visible page.
  var begun;
  function begin() {
    if (begun || (C.i && d.hidden)) return;
    begun = 1;
    post('/ct/v1/visit', ids({
      visit_id: cookie(C.k) || null, url: location.href, referrer: d.referrer
    }), safe(function (r) {
      if (!r) return unhide();
      visited(r);
      setInterval(safe(beat), C.p * 1000);
      d.addEventListener('visibilitychange', safe(beat));
      var kinds = ['mousemove', 'keydown', 'scroll', 'touchstart', 'click'];
      for (var i = 0; i < kinds.length; i++) w.addEventListener(kinds[i], safe(touched), true);
    }));
  }

  try {
    if (!C || !C.n || w.trubka) { unhide(); return; }
    w.trubka = C;
    SEL = '.' + C.c.join(',.');
    base = me && me.src ? me.src.replace(/\/ct\/tracker\.js.*$/, '') : C.u;
    if (C.i) {
      // Until the visitor interacts the page shows the site's own number: nothing to hide.
      unhide();
      var acts = ['scroll', 'pointerdown', 'pointermove', 'keydown', 'touchstart'];
      for (var i = 0; i < acts.length; i++) w.addEventListener(acts[i], safe(begin), true);
      return;
    }
    // Included synchronously in <head>: hide marked phones here (the snippet does it otherwise).
    if (me && !me.async && !me.defer && me.parentNode == d.head && !d.getElementById(HIDE)) {
      var st = d.createElement('style');
      st.id = HIDE;
      st.textContent = SEL + '{visibility:hidden!important}';
      (d.head || d.documentElement).appendChild(st);
    }
    // Never hide for longer than a second.
    setTimeout(unhide, 1000);
    begin();
  } catch (e) { unhide(); }
})(window, document);
