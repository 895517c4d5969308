// Security keys and passkeys: asks the browser (navigator.credentials) for a key's answer and
// posts it with the form. A form opts in with data-webauthn="create" or "get" and
// data-options (the URL that gives the server's options for this ceremony); its hidden
// field marked data-webauthn-answer carries the answer. The server checks everything; this only relays.
(function () {
  "use strict";

  function fromB64url(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/");
    while (padded.length % 4) { padded += "="; }
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeOptions(options) {
    options.challenge = fromB64url(options.challenge);
    if (options.user) { options.user.id = fromB64url(options.user.id); }
    (options.excludeCredentials || []).concat(options.allowCredentials || []).forEach(function (c) {
      c.id = fromB64url(c.id);
    });
    return options;
  }

  function answerJson(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      out.response.attestationObject = toB64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(response.authenticatorData);
      out.response.signature = toB64url(response.signature);
      if (response.userHandle) { out.response.userHandle = toB64url(response.userHandle); }
    }
    return JSON.stringify(out);
  }

  function say(form, text) {
    var box = form.querySelector("[data-webauthn-message]");
    if (box) { box.textContent = text; box.hidden = false; }
  }

  function fetchOptions(form) {
    var body = new URLSearchParams();
    var answerName = form.querySelector("[data-webauthn-answer]").name;
    new FormData(form).forEach(function (value, name) {
      if (name !== answerName && typeof value === "string") { body.append(name, value); }
    });
    return fetch(form.getAttribute("data-options"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (answer) {
      return answer.text().then(function (text) {
        if (!answer.ok) { throw new Error(text || "The server refused to start."); }
        return JSON.parse(text);
      });
    });
  }

  function ceremony(form, mediation, signal) {
    var kind = form.getAttribute("data-webauthn");
    return fetchOptions(form).then(function (options) {
      var publicKey = decodeOptions(options);
      if (kind === "create") { return navigator.credentials.create({ publicKey: publicKey }); }
      var request = { publicKey: publicKey };
      if (mediation) { request.mediation = mediation; request.signal = signal; }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      if (!credential) { throw new Error("No security key answered."); }
      form.querySelector("[data-webauthn-answer]").value = answerJson(credential);
      form.submit();
    });
  }

  var conditional = null;

  function start(form) {
    if (!window.PublicKeyCredential) {
      say(form, "This browser cannot use security keys or passkeys.");
      return;
    }
    if (conditional) { conditional.abort(); conditional = null; }
    ceremony(form).catch(function (error) {
      say(form, error && error.name === "NotAllowedError"
        ? "The security key did not answer, or you cancelled. Try again."
        : (error && error.message) || "The security key could not be used.");
    });
  }

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      start(form);
    });
    // The button stays disabled until this script can answer its press.
    form.querySelectorAll("[data-webauthn-start]").forEach(function (button) { button.disabled = false; });
    // The passkey sign-in also offers the browser's autofill of passkeys, where it exists.
    if (form.hasAttribute("data-webauthn-autofill") && window.PublicKeyCredential &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available || conditional) { return; }
        conditional = new AbortController();
        ceremony(form, "conditional", conditional.signal).catch(function () { /* Autofill is optional. */ });
      });
    }
  });
})();
