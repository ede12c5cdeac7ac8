// Profit Engine demo storefront: one script for every page (the CSP allows no inline script).
// The publishable key comes from ?key=pk_… and is remembered in localStorage, so later pages
// keep it; when storage is unavailable the key travels in the links instead. The cart, the
// checkout and the last order live in localStorage too (in memory when it is unavailable).
(function () {
  'use strict';
  var CURRENCY = 'EUR';
  var PRODUCTS = [
    { id: 'espresso-one', variantId: 'espresso-one-black', name: 'Espresso One', category: 'machines',
      price: 249.0, description: 'A single-boiler espresso machine, 15 bar.' },
    { id: 'burr-grinder', variantId: 'burr-grinder-steel', name: 'Burr Grinder', category: 'grinders',
      price: 89.9, description: 'Conical steel burrs, 40 grind settings.' },
    { id: 'house-blend', variantId: 'house-blend-1kg', name: 'House Blend 1 kg', category: 'beans',
      price: 18.5, description: 'Medium roast, chocolate and hazelnut.' }
  ];
  var SHIPPING = { standard: 4.9, express: 12.0 };
  var page = document.body.getAttribute('data-page');
  var params = new URLSearchParams(location.search);
  var pe = window.pe || {};

  // ---- storage that may throw (private modes, disabled storage) ----
  var memory = {};
  var storageWorks = true;
  function load(k) {
    try {
      var v = window.localStorage.getItem('demo_' + k);
      return v == null ? null : JSON.parse(v);
    } catch (e) {
      storageWorks = false;
      return k in memory ? memory[k] : null;
    }
  }
  function store(k, v) {
    memory[k] = v;
    try {
      if (v == null) window.localStorage.removeItem('demo_' + k);
      else window.localStorage.setItem('demo_' + k, JSON.stringify(v));
    } catch (e) {
      storageWorks = false;
    }
  }

  var key = params.get('key');
  if (key) store('key', key);
  else key = load('key');

  // A link to another demo page; carries the key when storage cannot.
  function href(file, extra) {
    var q = new URLSearchParams(extra || {});
    if (!storageWorks && key) q.set('key', key);
    var s = q.toString();
    return file + (s ? '?' + s : '');
  }
  function go(file, extra) {
    location.href = href(file, extra);
  }
  function money(n) {
    return '€' + n.toFixed(2);
  }
  function round2(n) {
    return Math.round(n * 100) / 100;
  }
  function $(id) {
    return document.getElementById(id);
  }
  function text(id, s) {
    var el = $(id);
    if (el) el.textContent = s;
  }
  function product(id) {
    for (var i = 0; i < PRODUCTS.length; i++) if (PRODUCTS[i].id === id) return PRODUCTS[i];
    return null;
  }
  function cart() {
    return load('cart') || [];
  }
  function cartValue(items) {
    return round2(items.reduce(function (sum, l) { return sum + l.price * l.quantity; }, 0));
  }
  function cartQuantity(items) {
    return items.reduce(function (n, l) { return n + l.quantity; }, 0);
  }
  function call(method) {
    var args = [].slice.call(arguments, 1);
    if (typeof pe[method] === 'function') pe[method].apply(pe, args);
  }

  // ---- common to every page ----
  if (key) {
    call('init', { key: key, endpoint: location.origin, debug: params.get('debug') === '1' });
  } else {
    $('key-missing').hidden = false;
  }
  if (typeof pe.ids === 'function') {
    var ids = pe.ids();
    if (ids && ids.sessionId) text('session-id', ids.sessionId);
  }
  text('cart-count', String(cartQuantity(cart())));
  Array.prototype.forEach.call(document.querySelectorAll('a[data-nav]'), function (a) {
    a.setAttribute('href', href(a.getAttribute('href')));
  });

  // ---- pages ----
  var pages = {
    home: function () {
      var grid = $('products');
      PRODUCTS.forEach(function (p) {
        var cell = document.createElement('section');
        cell.className = 'cell';
        var h = document.createElement('h2');
        var a = document.createElement('a');
        a.href = href('product.html', { id: p.id });
        a.textContent = p.name;
        a.setAttribute('data-product', p.id);
        h.appendChild(a);
        var d = document.createElement('p');
        d.className = 'muted';
        d.textContent = p.description;
        var price = document.createElement('p');
        price.className = 'price';
        price.textContent = money(p.price);
        cell.appendChild(h);
        cell.appendChild(d);
        cell.appendChild(price);
        grid.appendChild(cell);
      });
    },

    product: function () {
      var p = product(params.get('id')) || PRODUCTS[0];
      document.title = p.name + ' — Brutal Beans (Profit Engine demo)';
      text('product-category', p.category);
      text('product-name', p.name);
      text('product-description', p.description);
      text('product-price', money(p.price));
      call('productViewed', {
        productId: p.id, variantId: p.variantId, name: p.name, category: p.category,
        price: p.price, currency: CURRENCY
      });
      $('add-form').addEventListener('submit', function (e) {
        e.preventDefault();
        var quantity = Math.max(1, Math.min(10, parseInt($('quantity').value, 10) || 1));
        var items = cart();
        var line = null;
        items.forEach(function (l) { if (l.productId === p.id) line = l; });
        if (line) line.quantity += quantity;
        else items.push({ productId: p.id, variantId: p.variantId, name: p.name, price: p.price, quantity: quantity });
        store('cart', items);
        call('addToCart', {
          productId: p.id, variantId: p.variantId, name: p.name, quantity: quantity,
          price: p.price, currency: CURRENCY
        });
        go('cart.html');
      });
    },

    cart: function () {
      var items = cart();
      var body = $('cart-lines');
      items.forEach(function (l) {
        var tr = document.createElement('tr');
        [l.name, String(l.quantity), money(l.price), money(l.price * l.quantity)].forEach(function (s, i) {
          var td = document.createElement('td');
          td.textContent = s;
          if (i) td.className = 'num';
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      text('cart-total', money(cartValue(items)));
      $('cart-empty').hidden = items.length > 0;
      $('checkout').disabled = items.length === 0;
      call('cartViewed', { cartValue: cartValue(items), currency: CURRENCY, itemCount: cartQuantity(items) });
      $('checkout').addEventListener('click', function () {
        var now = cart();
        call('checkoutStarted', { cartValue: cartValue(now), currency: CURRENCY, itemCount: cartQuantity(now) });
        store('checkout', { startedAt: new Date().toISOString() });
        go('shipping.html');
      });
    },

    shipping: function () {
      $('shipping-form').addEventListener('submit', function (e) {
        e.preventDefault();
        var form = e.target;
        var method = form.elements.method.value;
        var country = form.elements.country.value;
        call('shippingSubmitted', {
          shippingMethod: method, shippingCost: SHIPPING[method], currency: CURRENCY, country: country
        });
        var checkout = load('checkout') || {};
        checkout.shippingMethod = method;
        checkout.shippingCost = SHIPPING[method];
        checkout.country = country;
        store('checkout', checkout);
        go('payment.html');
      });
    },

    payment: function () {
      var checkout = load('checkout') || {};
      var items = cart();
      var total = round2(cartValue(items) + (checkout.shippingCost || 0));
      text('order-total', money(total));
      $('payment-form').addEventListener('submit', function (e) {
        e.preventDefault();
        var method = e.target.elements.method.value;
        call('paymentSubmitted', { paymentMethod: method });
        var order = {
          orderId: 'BB-' + Date.now().toString(36).toUpperCase() + '-' +
            Math.floor(Math.random() * 1e6).toString(36).toUpperCase(),
          value: total,
          shipping: checkout.shippingCost || 0,
          items: items,
          reported: false
        };
        store('order', order);
        store('cart', null);
        store('checkout', null);
        go('confirmation.html');
      });
    },

    confirmation: function () {
      var order = load('order');
      if (!order) {
        text('order-id', 'none');
        return;
      }
      text('order-id', order.orderId);
      text('order-value', money(order.value));
      var body = $('order-lines');
      order.items.forEach(function (l) {
        var tr = document.createElement('tr');
        [l.quantity + ' × ' + l.name, money(l.price * l.quantity)].forEach(function (s, i) {
          var td = document.createElement('td');
          td.textContent = s;
          if (i) td.className = 'num';
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      // Once per order: a reload of the confirmation page is not a second sale.
      if (!order.reported) {
        call('orderCompleted', {
          orderId: order.orderId,
          value: order.value,
          shipping: order.shipping,
          currency: CURRENCY,
          items: order.items.map(function (l) {
            return { productId: l.productId, variantId: l.variantId, quantity: l.quantity, price: l.price };
          })
        });
        order.reported = true;
        store('order', order);
      }
    }
  };
  if (pages[page]) pages[page]();
})();
