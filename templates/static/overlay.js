// The live overlay (OBS browser source): donations and the goal bar from Server-Sent Events.
(() => {
  const root = document.getElementById('overlay')
  const list = document.getElementById('donations')
  const events = new EventSource(root.dataset.events)
  events.addEventListener('donation', (e) => {
    const d = JSON.parse(e.data)
    const el = document.createElement('div')
    el.className = 'donation'
    el.dataset.id = d.id
    const name = document.createElement('span')
    name.className = 'name'
    name.textContent = d.name + ' '
    const amount = document.createElement('span')
    amount.className = 'amount'
    amount.textContent = d.amount
    el.append(name, amount)
    if (d.message) {
      const msg = document.createElement('span')
      msg.className = 'message'
      msg.textContent = d.message
      el.append(msg)
    }
    list.prepend(el)
    setTimeout(() => el.remove(), 15000)
  })
  events.addEventListener('goal', (e) => {
    const g = JSON.parse(e.data)
    const box = document.getElementById('goal')
    box.hidden = !g.live
    document.getElementById('goal-text').textContent = g.text
    const pct = g.goal > 0 ? Math.min(100, (100 * g.raised) / g.goal) : 0
    document.getElementById('goal-fill').style.width = pct + '%'
    document.getElementById('goal-bar').hidden = !(g.goal > 0)
  })
})()
