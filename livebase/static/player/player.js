// The base's player: plays the room's HLS and shows the pinned product card.
// Live: the card follows the room's pin stream (server-sent events).
// Replay: the card follows the EXT-X-DATERANGE pins of the recording's playlist, matched to the
// playback position through its EXT-X-PROGRAM-DATE-TIME tags.
// Product data is user input: it is only ever set as text or as a checked image URL.
(function () {
  "use strict";

  var root = document.getElementById("player");
  var video = document.getElementById("video");
  var statusLine = document.getElementById("status");
  var badge = document.getElementById("badge");
  var card = {
    root: document.getElementById("card"),
    image: document.getElementById("card-image"),
    gi: document.getElementById("card-gi"),
    giName: document.getElementById("card-gi-name"),
    titleZh: document.getElementById("card-title-zh"),
    titleEn: document.getElementById("card-title-en"),
    price: document.getElementById("card-price"),
  };
  var GI_SYSTEMS = {
    protected_product: "地理标志保护产品",
    trademark: "地理标志证明商标/集体商标",
    agricultural: "农产品地理标志",
  };
  var RETRY_MS = 5000;

  function say(text) {
    statusLine.textContent = text;
    statusLine.hidden = !text;
  }

  function formatPrice(fen, currency) {
    var amount = Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
    return currency === "CNY" || !currency ? "¥" + amount : amount + " " + currency;
  }

  function imageUrl(url) {
    if (typeof url !== "string") return null;
    if (/^https?:\/\//i.test(url)) return url;
    return url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;
  }

  // data: a card as /live/…/pins and …/cards give it ({pin_id, product}), or null to hide.
  function showCard(data) {
    var product = data && data.product;
    if (!product) {
      card.root.hidden = true;
      return;
    }
    card.titleZh.textContent = product.title_zh || "";
    card.titleEn.textContent = product.title_en || "";
    card.titleEn.hidden = !product.title_en;
    var priced = typeof product.price_fen === "number";
    card.price.textContent = priced ? formatPrice(product.price_fen, product.currency) : "";
    card.price.hidden = !priced;
    var src = imageUrl(product.image);
    if (src) {
      if (card.image.getAttribute("src") !== src) card.image.src = src;
      card.image.hidden = false;
    } else {
      card.image.removeAttribute("src");
      card.image.hidden = true;
    }
    var gi = product.gi;
    if (gi && gi.registered_name) {
      card.giName.textContent = gi.registered_name;
      card.gi.title = [GI_SYSTEMS[gi.system] || "", gi.registration_number || ""].join(" ").trim();
      card.gi.hidden = false;
    } else {
      card.gi.hidden = true;
    }
    card.root.hidden = false;
  }

  // --- playback ---------------------------------------------------------------------------

  // Plays src with hls.js where the browser has MediaSource, else natively (Safari, iOS).
  // onFail is called once when the stream cannot be loaded or breaks.
  function play(src, onFail) {
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls();
      hls.on(window.Hls.Events.ERROR, function (_event, data) {
        if (data.fatal) {
          hls.destroy();
          onFail();
        }
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      return;
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.addEventListener("error", onFail, { once: true });
      video.src = src;
      return;
    }
    say("此浏览器无法播放 HLS · This browser cannot play HLS");
  }

  function startLive() {
    var playing = false;
    var retry = null;
    badge.textContent = "直播 LIVE";

    function load() {
      retry = null;
      say("");
      playing = true;
      play(root.dataset.src, function () {
        playing = false;
        badge.hidden = true;
        say("等待直播开始… · Waiting for the stream");
        retry = setTimeout(load, RETRY_MS);
      });
    }
    // Browsers only start a video by themselves when it is muted; the viewer unmutes it.
    video.muted = true;
    video.autoplay = true;
    video.addEventListener("playing", function () {
      badge.hidden = false;
    });

    var pins = new EventSource(root.dataset.pins);
    pins.addEventListener("pin", function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (_error) {
        return;
      }
      showCard(data);
      // A pin means the room is live: no need to wait for the next retry.
      if (data && !playing && retry !== null) {
        clearTimeout(retry);
        load();
      }
    });
    load();
  }

  // --- replay -----------------------------------------------------------------------------

  function attributes(text) {
    var out = {};
    var re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
    var match;
    while ((match = re.exec(text)) !== null) {
      var value = match[2];
      out[match[1]] = value.charAt(0) === '"' ? value.slice(1, -1) : value;
    }
    return out;
  }

  // The segments (media start, duration, wall-clock start) and date ranges of a media playlist.
  function parsePlaylist(text) {
    var segments = [];
    var ranges = [];
    var position = 0;
    var duration = null;
    var date = null;
    var ended = false;
    text.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf("#EXT-X-PROGRAM-DATE-TIME:") === 0) {
        date = Date.parse(line.slice(25));
      } else if (line.indexOf("#EXTINF:") === 0) {
        duration = parseFloat(line.slice(8));
      } else if (line.indexOf("#EXT-X-DATERANGE:") === 0) {
        var a = attributes(line.slice(17));
        var start = Date.parse(a["START-DATE"]);
        var end = a["END-DATE"] ? Date.parse(a["END-DATE"]) : null;
        if (end === null && a.DURATION) end = start + parseFloat(a.DURATION) * 1000;
        if (a.ID && !isNaN(start)) ranges.push({ id: a.ID, start: start, end: end, attrs: a });
      } else if (line.indexOf("#EXT-X-ENDLIST") === 0) {
        ended = true;
      } else if (line && line.charAt(0) !== "#" && duration !== null) {
        var last = segments[segments.length - 1];
        if (date === null && last && last.date !== null) date = last.date + last.duration * 1000;
        segments.push({ start: position, duration: duration, date: date });
        position += duration;
        duration = null;
        date = null;
      }
    });
    return { segments: segments, ranges: ranges, ended: ended };
  }

  // The wall-clock time (ms) shown at media time t, or null.
  function wallClock(segments, t) {
    for (var i = 0; i < segments.length; i++) {
      var s = segments[i];
      if (t < s.start + s.duration || i === segments.length - 1) {
        return s.date === null ? null : s.date + (t - s.start) * 1000;
      }
    }
    return null;
  }

  function startReplay() {
    var timeline = { segments: [], ranges: [] };
    var cards = {};
    badge.textContent = "回放 REPLAY";
    badge.hidden = false;

    function update() {
      var now = wallClock(timeline.segments, video.currentTime);
      var active = null;
      if (now !== null) {
        timeline.ranges.forEach(function (r) {
          if (r.start <= now && (r.end === null || now < r.end)) active = r; // latest start wins
        });
      }
      if (active === null) {
        showCard(null);
      } else {
        showCard(cards[active.id] || { product: { title_zh: active.attrs["X-TITLE"] || "" } });
      }
    }

    function refresh() {
      var playlist = fetch(root.dataset.src, { cache: "no-cache" }).then(function (r) {
        if (!r.ok) throw new Error("playlist " + r.status);
        return r.text();
      });
      var known = fetch(root.dataset.cards, { cache: "no-cache" }).then(function (r) {
        return r.ok ? r.json() : { cards: {} };
      });
      return Promise.all([playlist, known]).then(function (both) {
        timeline = parsePlaylist(both[0]);
        cards = both[1].cards || {};
        root.dataset.ready = "true";
        update();
        // A session still live keeps growing its recording: read it again now and then.
        if (!timeline.ended) setTimeout(refresh, 10000);
      });
    }

    ["timeupdate", "seeking", "seeked"].forEach(function (name) {
      video.addEventListener(name, update);
    });
    refresh().catch(function () {
      say("无法读取回放 · The replay cannot be read");
    });
    play(root.dataset.src, function () {
      say("无法播放回放 · The replay cannot be played");
    });
  }

  if (root.dataset.mode === "live") {
    startLive();
  } else {
    startReplay();
  }
})();
