/*
 * A local stand-in for Tencent's WeCom JS-SDK (jweixin), served only in sandbox mode
 * (WECHAT_SANDBOX=1) so the demo makes no request outside the machine. It is NOT Tencent's
 * file: it offers the few calls Weiying's pages use (config, ready, error, agentConfig,
 * openEnterpriseChat), checks that each got the fields WeCom needs, and shows what WeCom
 * would do instead of doing it. Production loads the real SDK from WECHAT["JSSDK_URL"].
 */
(function () {
  "use strict";
  var readyCallbacks = [];
  var configured = false;
  var calls = [];

  function need(name, options, fields) {
    for (var i = 0; i < fields.length; i++) {
      if (options[fields[i]] === undefined || options[fields[i]] === "") {
        return name + ":fail missing " + fields[i];
      }
    }
    return "";
  }

  function finish(options, problem, result) {
    var answer = result || {};
    answer.errMsg = problem || answer.errMsg || "ok";
    if (problem) {
      if (options.fail) { options.fail(answer); }
    } else if (options.success) {
      options.success(answer);
    }
    if (options.complete) { options.complete(answer); }
  }

  function notice(text) {
    var box = document.createElement("div");
    box.className = "weui-toptips weui-toptips_success shown";
    box.setAttribute("role", "status");
    box.setAttribute("data-testid", "sandbox-jssdk-notice");
    box.textContent = text;
    document.body.appendChild(box);
    setTimeout(function () { box.remove(); }, 4000);
  }

  window.wx = {
    sandbox: true,
    calls: calls,
    config: function (options) {
      var problem = need("config", options, ["appId", "timestamp", "nonceStr", "signature"]);
      calls.push(["config", options]);
      configured = !problem;
      setTimeout(function () {
        if (configured) {
          readyCallbacks.splice(0).forEach(function (fn) { fn(); });
        }
      }, 0);
    },
    ready: function (fn) {
      if (configured) { setTimeout(fn, 0); } else { readyCallbacks.push(fn); }
    },
    error: function () {},
    agentConfig: function (options) {
      var problem = need("agentConfig", options,
        ["corpid", "agentid", "timestamp", "nonceStr", "signature"]);
      calls.push(["agentConfig", options]);
      setTimeout(function () { finish(options, problem); }, 0);
    },
    openEnterpriseChat: function (options) {
      var problem = need("openEnterpriseChat", options, ["externalUserIds"]);
      calls.push(["openEnterpriseChat", options]);
      if (!problem) {
        notice("[sandbox] WeCom would open the chat with " + options.externalUserIds);
      }
      setTimeout(function () { finish(options, problem, { chatId: "sandbox-chat" }); }, 0);
    }
  };
})();
