// Progressive help only: every page works without it.
(function () {
    'use strict';
    // Refuse too large files before they are uploaded.
    document.querySelectorAll('input[type=file][data-max-size]').forEach(function (input) {
        input.addEventListener('change', function () {
            var max = Number(input.dataset.maxSize) * 1000000;
            var big = Array.prototype.filter.call(input.files, function (f) { return f.size > max; });
            input.setCustomValidity(big.length ? input.dataset.tooLarge + ' ' + big.map(function (f) { return f.name; }).join(', ') : '');
            input.reportValidity();
        });
    });
    // One click sends a form once.
    document.querySelectorAll('form[method=post]').forEach(function (form) {
        form.addEventListener('submit', function () {
            form.querySelectorAll('button[type=submit]').forEach(function (b) {
                window.setTimeout(function () { b.disabled = true; }, 0);
            });
        });
    });
}());
