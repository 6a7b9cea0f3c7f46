/* Unit fields as a type-ahead (tracker/views/common.py, unit_picker). A field marked data-units — a
   <select> of one unit or a list of ticked checkboxes — holds only its chosen units; this script puts a
   search box before it, asks data-units (lists.unit_search: units in the user's scope) for the units
   matching what is typed, offers them in a <datalist>, and adds the one picked: selected in a <select>,
   a new ticked checkbox in a list. Without JavaScript the chosen units stay and can be unticked. */
(function () {
  "use strict";

  function appendQuery(url, params) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + params;
  }

  function choose(field, unit) {
    var value = String(unit.id);
    if (field.tagName === "SELECT") {
      var option = Array.prototype.filter.call(field.options, function (o) { return o.value === value; })[0];
      if (!option) {
        option = new Option(unit.label, value);
        field.appendChild(option);
      }
      option.selected = true;
      field.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    var box = Array.prototype.filter.call(field.querySelectorAll("input[type=checkbox]"),
                                          function (b) { return b.value === value; })[0];
    if (!box) {
      var item = document.createElement("li");
      box = document.createElement("input");
      box.type = "checkbox";
      box.name = field.getAttribute("data-name");
      box.value = value;
      box.id = field.id + "-u" + value;
      var label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = unit.label;
      item.appendChild(box);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(label);
      field.appendChild(item);
    }
    box.checked = true;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function enhance(field) {
    var text = field.getAttribute("data-search-label") || "";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "unit-search";
    input.id = field.id + "-search";
    input.placeholder = text;
    input.autocomplete = "off";
    var list = document.createElement("datalist");
    list.id = field.id + "-matches";
    input.setAttribute("list", list.id);
    field.parentNode.insertBefore(input, field);
    field.parentNode.insertBefore(list, field);

    // The field's label names the search box now; the field keeps the name as its own label.
    var label = document.querySelector("label[for='" + field.id + "']");
    if (label) {
      field.setAttribute("aria-label", label.textContent.trim());
      label.htmlFor = input.id;
    } else {
      input.setAttribute("aria-label", text);
    }
    if (field.hasAttribute("autofocus")) {
      field.removeAttribute("autofocus");
      input.focus();
    }

    var found = {};
    var latest = 0;
    var timer = null;

    function pickTyped() {
      var unit = found[input.value];
      if (unit) {
        choose(field, unit);
        input.value = "";
        list.textContent = "";
        found = {};
      }
      return Boolean(unit);
    }

    function ask(text) {
      var asked = ++latest;
      fetch(appendQuery(field.getAttribute("data-units"), "q=" + encodeURIComponent(text)),
            { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { units: [] }; })
        .then(function (answer) {
          if (asked !== latest) { return; }
          found = {};
          list.textContent = "";
          answer.units.forEach(function (unit) {
            found[unit.label] = unit;
            var option = document.createElement("option");
            option.value = unit.label;
            list.appendChild(option);
          });
          pickTyped();
        })
        .catch(function () { /* offline: the chosen units stay as they are */ });
    }

    input.addEventListener("input", function () {
      if (pickTyped()) { return; }
      window.clearTimeout(timer);
      var typed = input.value.trim();
      if (!typed) { latest++; return; }
      // A whole label typed or pasted, 名称（地区）, is looked up by the name.
      timer = window.setTimeout(function () { ask(typed.replace(/（[^（）]*）$/, "") || typed); }, 150);
    });

    // Enter in the search box picks the only match instead of submitting the form.
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.ctrlKey || event.metaKey) { return; }
      event.preventDefault();
      var labels = Object.keys(found);
      if (labels.length === 1) {
        input.value = labels[0];
        pickTyped();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-units]"), enhance);
  });
}());
