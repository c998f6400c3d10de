// Live refresh of pages marked data-refresh-seconds, and progress of the bulk retry. The console
// works without this file: it only saves the operator a reload.
'use strict';

(() => {
  const main = document.getElementById('main');
  const seconds = Number(main?.dataset.refreshSeconds);
  if (main && seconds > 0) {
    const refresh = async () => {
      // Never swap the page under an operator who is typing or choosing.
      const active = document.activeElement;
      if (active && main.contains(active) && active.matches('input, textarea, select')) return;
      try {
        const response = await fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } });
        if (!response.ok || response.redirected) return;
        const next = new DOMParser().parseFromString(await response.text(), 'text/html').getElementById('main');
        if (next) main.replaceChildren(...next.childNodes);
      } catch {
        // The next tick tries again.
      }
    };
    setInterval(refresh, seconds * 1000);
  }

  const bulk = document.querySelector('form[data-progress]');
  const output = document.getElementById('bulk-progress');
  if (bulk && output) {
    bulk.addEventListener('submit', () => {
      // One run at a time: a second click would only be refused.
      for (const button of bulk.querySelectorAll('button')) button.disabled = true;
      output.textContent = 'Retrying…';
      const url = bulk.dataset.progress;
      const poll = async () => {
        try {
          const response = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
          if (response.ok) {
            const p = await response.json();
            if (p.running)
              output.textContent = `Retrying ${p.done} of ${p.total}: ${p.completed} settled, ${p.failed} still failed…`;
          }
        } catch {
          // Progress is a courtesy; the outcome arrives with the page.
        }
      };
      setInterval(poll, 500);
    });
  }
})();
