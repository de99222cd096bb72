// Every page: remember the browser's time zone in a cookie, so the server shows times
// (the calendar, the lists) in it; reload once when it was not known yet.
const cookie = document.body.dataset.tzCookie || "chat33_tz";
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const current = document.cookie.split("; ").find((c) => c.startsWith(cookie + "="));
const known = current ? current.split("=")[1] : null;
if (known !== zone) {
  document.cookie = `${cookie}=${zone}; path=/app; SameSite=Lax; max-age=31536000`;
  if (known === null && document.querySelector("[data-tz-reload]")) {
    window.location.reload();
  }
}
