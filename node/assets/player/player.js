// The channel page's player: hls.js where the browser has Media Source Extensions, else the
// browser's own HLS. It starts muted (so autoplay is allowed), shows its state and every fatal
// error on the page, and keeps the same in `window.esmPlayer` for tests and for the curious.
(function () {
  'use strict';
  var MAX_ERRORS = 50;
  var MAX_RECOVERIES = 10;
  var video = document.getElementById('video');
  var statusLine = document.getElementById('status');
  var figures = document.getElementById('figures');
  var fromStart = new URLSearchParams(location.search).get('from') === 'start';
  var playlist = fromStart ? 'event.m3u8' : 'index.m3u8';
  var report = (window.esmPlayer = {
    engine: null,
    playlist: playlist,
    state: 'starting',
    errors: [],
    fatal: [],
  });

  function show(state, text, isError) {
    report.state = state;
    statusLine.textContent = text;
    statusLine.className = isError ? 'error' : '';
  }

  function remember(list, entry) {
    list.push(entry);
    if (list.length > MAX_ERRORS) list.shift();
  }

  function fail(where, detail, fatal) {
    var entry = { at: new Date().toISOString(), where: where, detail: String(detail), fatal: fatal };
    remember(report.errors, entry);
    if (fatal) {
      remember(report.fatal, entry);
      show('error', 'Error (' + where + '): ' + entry.detail, true);
    } else if (window.console) {
      console.warn('player:', where, entry.detail);
    }
  }

  function play() {
    var p = video.play();
    if (p && p.catch) {
      p.catch(function (e) {
        fail('autoplay', e && e.message ? e.message : e, false);
        show('paused', 'Press play to watch.', false);
      });
    }
  }

  video.addEventListener('playing', function () {
    show('playing', 'Playing ' + (fromStart ? 'from the start' : 'live') + '.', false);
  });
  video.addEventListener('waiting', function () {
    if (report.state !== 'error') show('waiting', 'Buffering…', false);
  });
  video.addEventListener('ended', function () {
    show('ended', 'The broadcast ended.', false);
  });
  video.addEventListener('error', function () {
    var e = video.error;
    fail('video element', e ? 'code ' + e.code + (e.message ? ': ' + e.message : '') : 'unknown', true);
  });

  setInterval(function () {
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    figures.textContent =
      (report.engine || 'no player') +
      ' · ' + playlist +
      ' · ' + video.currentTime.toFixed(1) + ' s' +
      (q ? ' · ' + q.totalVideoFrames + ' frames decoded, ' + q.droppedVideoFrames + ' dropped' : '');
  }, 1000);

  if (window.Hls && window.Hls.isSupported()) {
    var Hls = window.Hls;
    report.engine = 'hls.js ' + Hls.version;
    // Live: an endless duration, so the controls show a live stream rather than a short clip.
    // From the start: position 0, since hls.js starts a growing EVENT playlist at its edge.
    var hls = new Hls({ liveDurationInfinity: !fromStart, startPosition: fromStart ? 0 : -1 });
    var recoveries = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, play);
    hls.on(Hls.Events.FRAG_BUFFERED, function () {
      recoveries = 0;
    });
    hls.on(Hls.Events.ERROR, function (_event, data) {
      fail(data.type, data.details + (data.reason ? ': ' + data.reason : ''), data.fatal);
      if (!data.fatal || recoveries >= MAX_RECOVERIES) return;
      recoveries += 1;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        setTimeout(function () {
          hls.loadSource(playlist);
          hls.startLoad();
        }, 2000);
      }
    });
    hls.loadSource(playlist);
    hls.attachMedia(video);
    report.hls = hls;
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    report.engine = 'native HLS';
    video.src = playlist;
    video.addEventListener('loadedmetadata', function () {
      if (fromStart) video.currentTime = 0;
      play();
    });
  } else {
    fail('browser', 'this browser plays neither HLS nor Media Source Extensions', true);
  }
})();
