"""Text templates and name lists for the mention simulator (data only, no logic).

Placeholders, filled by :mod:`streams.connectors.simulate`:

* ``{b}``      one of the brand's terms ("Acme", "AcmePhone")
* ``{at}``     the brand's support handle in that language ("@AcmeSupport", "@Acme_ES")
* ``{tag}``    the crisis hashtag ("#AcmeDown", "#BoycottAcme")
* ``{friend}`` another user's handle ("@lucia_gomez")
* ``{n}``      a small number (hours down, times it happened)

Every template contains ``{b}``: a handle such as ``@AcmeSupport`` alone is not a word a watch
rule would match, and a simulated mention that no watch picks up is wasted.

Baseline texts are written to be plainly positive, neutral or negative so a sentiment model
(and a person skimming a demo) can tell them apart; crisis texts are angry *and* topical, so
risk-term detectors have words to find. Apostrophes are ASCII on purpose: typographic quotes
are "confusable" characters that lint flags and some tokenisers split oddly.
"""

from __future__ import annotations

from typing import Final, Literal

SimSentiment = Literal["positive", "neutral", "negative"]

#: Share of each language in the simulated stream; English dominates as on real platforms.
LANGUAGE_WEIGHTS: Final[dict[str, float]] = {
    "en": 0.40, "es": 0.20, "pt": 0.12, "fr": 0.10, "de": 0.10, "it": 0.08,
}

#: Suffix of the brand's customer-care handle per language (@AcmeSupport, @Acme_ES, ...).
SUPPORT_SUFFIX: Final[dict[str, str]] = {
    "en": "Support", "es": "_ES", "fr": "_FR", "de": "_DE", "pt": "_BR", "it": "_IT",
}

BASELINE: Final[dict[str, dict[SimSentiment, tuple[str, ...]]]] = {
    "en": {
        "positive": (
            "Honestly {b} just keeps getting better. Loving the new update",
            "Shoutout to {at} for sorting out my {b} order in five minutes. That's how you do it",
            "Switched to {b} last month and I'm never going back",
            "{b} is hands down the best thing I've bought this year",
            "the new {b} design is so clean, great job team",
            "Big thanks to {at}, {b} support was fast, friendly and actually fixed it",
            "Really impressed with {b}. Works perfectly and the battery lasts forever",
            "{friend} you have to try {b}, it's amazing",
            "Can't believe how smooth {b} is now. Love it",
            "Five stars for {b}. Very happy customer here!",
            "{b} saved me so much time this week, brilliant product",
            "Finally a company that listens. Great experience with {b} today",
        ),
        "neutral": (
            "Does anyone know if {b} ships to Canada?",
            "{b} announced its quarterly results this morning",
            "Thinking about trying {b}, any opinions? {friend}",
            "Reading the {b} release notes for version {n}.0",
            "{at} what time does the {b} store open on Sunday?",
            "{b} is holding an event in Berlin next week",
            "Comparing {b} with a couple of alternatives before I decide",
            "Saw a new {b} ad on TV tonight",
            "Is {b} available in the app store in my country?",
            "{b} will update its terms of service next month",
            "Heading to the {b} store to pick up an order",
            "Anyone using {b} for work? How do you set up shared accounts?",
        ),
        "negative": (
            "{b} support is useless. Waited an hour and nobody answered",
            "Really disappointed with {b}, it broke after two weeks",
            "{at} I was charged twice for {b} and still no refund. Terrible.",
            "Worst update ever, {b} is slow and buggy now",
            "Never buying from {b} again. Awful experience.",
            "{b} keeps crashing every time I open it. So frustrating",
            "The new {b} pricing is a rip-off",
            "My {b} order is a week late and nobody tells me anything",
            "{at} third email about my {b} account this week and still no answer. Hopeless",
        ),
    },
    "es": {
        "positive": (
            "Me encanta {b}, funciona de maravilla",
            "Gracias {at} por la atención tan rápida con mi pedido de {b}, así da gusto",
            "La nueva actualización de {b} está genial",
            "{b} es lo mejor que he comprado este año, súper recomendable",
            "Muy contenta con {b}, todo perfecto",
            "Cada día me gusta más {b}. ¡Buenísimo!",
            "{friend} tienes que probar {b}, es increíble",
            "Excelente servicio de {b}, un diez",
            "Por fin una empresa que escucha. Genial la experiencia con {b}",
        ),
        "neutral": (
            "¿Alguien sabe si {b} hace envíos a Chile?",
            "{b} presenta hoy sus resultados del trimestre",
            "Estoy pensando en probar {b}, ¿qué opináis?",
            "{at} ¿a qué hora abre la tienda de {b} el domingo?",
            "Mañana {b} lanza una nueva versión de la app",
            "Comparando {b} con otras opciones antes de decidirme",
            "Acabo de ver un anuncio de {b} en la tele",
            "{b} abrirá una oficina en Madrid el mes que viene",
        ),
        "negative": (
            "Pésima atención de {b}, una hora esperando y nadie responde",
            "Muy decepcionado con {b}, se rompió a las dos semanas",
            "{at} me cobraron {b} dos veces y todavía no me devuelven el dinero",
            "La última actualización de {b} es horrible, todo va lento",
            "No vuelvo a comprar en {b}. Qué mala experiencia",
            "{b} se cuelga cada vez que lo abro, qué frustración",
            "El pedido de {b} lleva una semana de retraso y nadie me dice nada",
        ),
    },
    "fr": {
        "positive": (
            "J'adore {b}, ça marche parfaitement",
            "Merci {at} pour la réponse rapide, service {b} au top !",
            "La nouvelle mise à jour de {b} est géniale",
            "{b} c'est vraiment mon meilleur achat de l'année",
            "Très satisfait de {b}, je recommande",
            "{friend} il faut que tu essaies {b}, c'est incroyable",
            "Bravo à l'équipe {b}, super boulot",
        ),
        "neutral": (
            "Quelqu'un sait si {b} livre en Belgique ?",
            "{b} publie ses résultats trimestriels ce matin",
            "J'hésite à essayer {b}, des avis ?",
            "{at} le magasin {b} est ouvert dimanche ?",
            "{b} sort une nouvelle version de l'appli demain",
            "Vu une pub {b} à la télé ce soir",
        ),
        "negative": (
            "Le service client de {b} est nul, une heure d'attente pour rien",
            "Très déçu par {b}, cassé au bout de deux semaines",
            "{at} j'ai été débité deux fois pour {b} et toujours pas remboursé",
            "La dernière mise à jour de {b} est catastrophique, tout rame",
            "Plus jamais {b}. Expérience horrible",
            "{b} plante à chaque ouverture, c'est insupportable",
        ),
    },
    "de": {
        "positive": (
            "Ich liebe {b}, funktioniert einfach perfekt",
            "Danke {at} für die schnelle Hilfe, super Service von {b}!",
            "Das neue Update von {b} ist richtig gut",
            "{b} ist echt der beste Kauf dieses Jahres",
            "Sehr zufrieden mit {b}, klare Empfehlung",
            "{friend} du musst {b} unbedingt ausprobieren, genial",
            "Großes Lob an das Team von {b}, toll gemacht",
        ),
        "neutral": (
            "Weiß jemand, ob {b} auch nach Österreich liefert?",
            "{b} veröffentlicht heute die Quartalszahlen",
            "Überlege, {b} auszuprobieren. Erfahrungen?",
            "{at} hat der {b} Laden am Sonntag geöffnet?",
            "Morgen kommt eine neue Version der {b} App",
            "Gerade Werbung von {b} im Fernsehen gesehen",
        ),
        "negative": (
            "Der Kundenservice von {b} ist eine Katastrophe, eine Stunde Warteschleife",
            "Total enttäuscht von {b}, nach zwei Wochen kaputt",
            "{at} {b} hat doppelt abgebucht und immer noch keine Erstattung. Unmöglich.",
            "Das letzte Update von {b} ist furchtbar, alles langsam und voller Bugs",
            "Nie wieder {b}. Schlechteste Erfahrung überhaupt",
            "{b} stürzt bei jedem Start ab, so nervig",
        ),
    },
    "pt": {
        "positive": (
            "Amo {b}, funciona perfeitamente",
            "Obrigado {at} pelo atendimento rápido, {b} nota 10!",
            "A nova atualização de {b} ficou ótima",
            "{b} foi a melhor compra do ano, recomendo muito",
            "Muito satisfeita com {b}, tudo perfeito",
            "{friend} você precisa testar {b}, é incrível",
            "Parabéns ao time de {b}, trabalho excelente",
        ),
        "neutral": (
            "Alguém sabe se {b} entrega em Portugal?",
            "{b} divulga hoje os resultados do trimestre",
            "Pensando em testar {b}, alguém recomenda?",
            "{at} a loja {b} abre no domingo?",
            "Amanhã sai uma nova versão do app {b}",
            "Vi um comercial de {b} na TV agora",
        ),
        "negative": (
            "Atendimento péssimo de {b}, uma hora esperando e ninguém responde",
            "Muito decepcionado com {b}, quebrou em duas semanas",
            "{at} fui cobrado duas vezes por {b} e até agora nada de reembolso",
            "A última atualização de {b} é horrível, tudo lento",
            "Nunca mais compro de {b}. Que experiência ruim",
            "{b} trava toda vez que abro, que raiva",
        ),
    },
    "it": {
        "positive": (
            "Adoro {b}, funziona alla perfezione",
            "Grazie {at} per l'assistenza velocissima, {b} servizio top!",
            "Il nuovo aggiornamento di {b} è fantastico",
            "{b} è il miglior acquisto dell'anno, lo consiglio",
            "Soddisfattissimo di {b}, tutto perfetto",
            "{friend} devi provare {b}, è incredibile",
        ),
        "neutral": (
            "Qualcuno sa se {b} spedisce in Svizzera?",
            "{b} presenta oggi i risultati trimestrali",
            "Sto pensando di provare {b}, consigli?",
            "{at} il negozio {b} è aperto domenica?",
            "Domani esce una nuova versione dell'app {b}",
            "Visto uno spot di {b} in TV stasera",
        ),
        "negative": (
            "Assistenza di {b} pessima, un'ora di attesa e nessuna risposta",
            "Molto deluso da {b}, rotto dopo due settimane",
            "{at} {b} mi ha addebitato due volte e ancora nessun rimborso. Vergognoso.",
            "L'ultimo aggiornamento di {b} è terribile, tutto lentissimo",
            "Mai più {b}. Esperienza orribile",
            "{b} si blocca ogni volta che lo apro, che nervi",
        ),
    },
}

#: Strongly negative, topical texts per crisis topic and language.
CRISIS_NEGATIVE: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "outage": {
        "en": (
            "{at} {b} app down again, third time this week {tag}",
            "{b} has been down for {n} hours. Absolutely ridiculous {tag}",
            "Is anyone else's {b} completely dead?? Can't log in, can't do anything {tag}",
            "{b} outage AGAIN. I pay for this garbage and it never works {tag}",
            "{b} still down. {n} hours. Not a single update from {at}. Pathetic.",
            "lost a whole day of work because {b} is down. thanks for nothing {tag}",
        ),
        "es": (
            "{b} lleva horas caído, qué vergüenza {tag}",
            "{at} {b} otra vez sin servicio, tercera vez esta semana",
            "¿A alguien más no le funciona {b}? Llevo {n} horas sin poder entrar {tag}",
            "Caída total de {b} y ni una explicación. Un desastre",
        ),
        "fr": (
            "{b} en panne depuis {n} heures, c'est honteux {tag}",
            "{at} encore une panne de {b}, troisième fois cette semaine",
            "Impossible de me connecter à {b} depuis ce matin. Inadmissible {tag}",
            "Panne générale chez {b} et aucune communication. Lamentable",
        ),
        "de": (
            "{b} ist schon wieder down, seit {n} Stunden geht nichts {tag}",
            "{at} dritter Ausfall von {b} diese Woche, echt eine Frechheit",
            "Kann mich seit heute Morgen nicht bei {b} einloggen. Unfassbar {tag}",
            "Totalausfall bei {b} und keine einzige Info. Peinlich",
        ),
        "pt": (
            "{b} fora do ar há {n} horas, que vergonha {tag}",
            "{at} {b} caiu de novo, terceira vez essa semana",
            "Mais alguém sem conseguir entrar no {b}? Tá tudo parado {tag}",
            "Pane geral em {b} e nenhuma explicação. Ridículo",
        ),
        "it": (
            "{b} down da {n} ore, una vergogna {tag}",
            "{at} {b} di nuovo fuori servizio, terza volta questa settimana",
            "Impossibile accedere a {b} da stamattina. Inaccettabile {tag}",
            "Disservizio totale di {b} e nessuna comunicazione. Pessimi",
        ),
    },
    "recall": {
        "en": (
            "{b} recalling the product after reports of overheating?? Mine burned my hand {tag}",
            "Just got the recall notice from {b}. Dangerous product, how did this pass? {tag}",
            "{at} my kid's {b} caught fire and you call it a 'voluntary recall'? Disgraceful",
            "Never trusting {b} again after this recall. Unsafe junk {tag}",
        ),
        "es": (
            "{b} retira el producto por riesgo de incendio. El mío se sobrecalentó {tag}",
            "{at} ¿un {b} defectuoso y peligroso y solo pedís disculpas? Vergonzoso",
            "Después de esta retirada no vuelvo a confiar en {b} {tag}",
        ),
        "fr": (
            "{b} rappelle son produit pour risque de surchauffe. Le mien a brûlé {tag}",
            "{at} {b} a vendu un produit dangereux pendant des mois, c'est scandaleux",
            "Plus jamais confiance en {b} après ce rappel {tag}",
        ),
        "de": (
            "{b} ruft das Produkt wegen Brandgefahr zurück. Meins ist überhitzt {tag}",
            "{at} {b} hat monatelang ein gefährliches Produkt verkauft, eine Schande",
            "Nach diesem Rückruf vertraue ich {b} nie wieder {tag}",
        ),
        "pt": (
            "{b} fazendo recall por risco de incêndio. O meu superaqueceu, que perigo {tag}",
            "{at} {b} vendendo produto perigoso por meses, que vergonha",
            "Depois desse recall nunca mais confio em {b} {tag}",
        ),
        "it": (
            "{b} richiama il prodotto per rischio incendio. Il mio si è surriscaldato {tag}",
            "{at} {b} ha venduto un prodotto pericoloso per mesi, vergognoso",
            "Dopo questo richiamo non mi fido più di {b} {tag}",
        ),
    },
    "data breach": {
        "en": (
            "{b} leaked my data and I found out from the news, not from them. Unacceptable {tag}",
            "{at} why is my {b} password on a hacker forum?? {tag}",
            "Millions of accounts exposed and {b} says nothing. Delete your account now {tag}",
            "Just got a phishing email using my {b} account details. Thanks for the breach",
        ),
        "es": (
            "{b} filtró mis datos y me entero por las noticias. Inaceptable {tag}",
            "{at} ¿por qué mi contraseña de {b} aparece en un foro de hackers? {tag}",
            "Millones de cuentas expuestas y {b} sin decir nada. Borrad vuestras cuentas {tag}",
        ),
        "fr": (
            "{b} a laissé fuiter mes données et je l'apprends par la presse. Inacceptable {tag}",
            "{at} pourquoi mon mot de passe {b} circule sur un forum de hackers ? {tag}",
            "Des millions de comptes exposés et {b} ne dit rien. Honteux {tag}",
        ),
        "de": (
            "{b} hat meine Daten geleakt und ich erfahre es aus der Zeitung. Inakzeptabel {tag}",
            "{at} warum steht mein {b} Passwort in einem Hackerforum? {tag}",
            "Millionen Konten offengelegt und {b} schweigt. Löscht eure Accounts {tag}",
        ),
        "pt": (
            "{b} vazou meus dados e fiquei sabendo pelo jornal. Inaceitável {tag}",
            "{at} por que minha senha do {b} está num fórum de hackers? {tag}",
            "Milhões de contas expostas e {b} em silêncio. Vergonhoso {tag}",
        ),
        "it": (
            "{b} ha perso i miei dati e lo scopro dai giornali. Inaccettabile {tag}",
            "{at} perché la mia password di {b} è su un forum di hacker? {tag}",
            "Milioni di account esposti e {b} tace. Vergognoso {tag}",
        ),
    },
    "boycott": {
        "en": (
            "After what {b} did, I'm done. Cancelling everything {tag}",
            "Spread the word: don't give {b} another cent {tag}",
            "Shameful statement from the {b} CEO. Boycott until they apologise {tag}",
            "Returned my {b} stuff today. Not supporting a company like this {tag}",
        ),
        "es": (
            "Después de lo que hizo {b}, se acabó. Cancelo todo {tag}",
            "Difundid: ni un euro más para {b} {tag}",
            "Vergonzosas las declaraciones del CEO de {b}. Boicot ya {tag}",
        ),
        "fr": (
            "Après ce qu'a fait {b}, c'est fini pour moi. Je résilie tout {tag}",
            "Faites tourner : plus un centime pour {b} {tag}",
            "Déclarations honteuses du PDG de {b}. Boycott {tag}",
        ),
        "de": (
            "Nach der Aktion von {b} bin ich raus. Alles gekündigt {tag}",
            "Teilt es: keinen Cent mehr für {b} {tag}",
            "Beschämende Aussagen vom {b} CEO. Boykott {tag}",
        ),
        "pt": (
            "Depois do que {b} fez, pra mim acabou. Cancelando tudo {tag}",
            "Espalhem: nem mais um centavo pra {b} {tag}",
            "Declaração vergonhosa do CEO de {b}. Boicote já {tag}",
        ),
        "it": (
            "Dopo quello che ha fatto {b}, basta. Disdico tutto {tag}",
            "Fate girare: neanche un euro a {b} {tag}",
            "Dichiarazioni vergognose del CEO di {b}. Boicottaggio {tag}",
        ),
    },
    "fraud": {
        "en": (
            "{b} charged me for a subscription I never signed up for. This is a scam {tag}",
            "{at} hidden fees everywhere. {b} is literally stealing from customers {tag}",
            "Reports say {b} faked its numbers. Fraud, plain and simple {tag}",
            "Got scammed by {b}. Filing a complaint with my bank {tag}",
        ),
        "es": (
            "{b} me cobra una suscripción que nunca contraté. Es una estafa {tag}",
            "{at} comisiones ocultas por todas partes. {b} nos está robando {tag}",
            "Me estafó {b}. Ya puse la denuncia {tag}",
        ),
        "fr": (
            "{b} me facture un abonnement que je n'ai jamais pris. Arnaque {tag}",
            "{at} des frais cachés partout chez {b}, c'est du vol {tag}",
            "Escroquée par {b}. Plainte déposée {tag}",
        ),
        "de": (
            "{b} bucht ein Abo ab, das ich nie abgeschlossen habe. Betrug {tag}",
            "{at} überall versteckte Gebühren bei {b}. Das ist Abzocke {tag}",
            "Von {b} abgezockt worden. Anzeige ist raus {tag}",
        ),
        "pt": (
            "{b} me cobrou uma assinatura que nunca fiz. Golpe {tag}",
            "{at} taxa escondida em tudo no {b}, isso é roubo {tag}",
            "Caí no golpe de {b}. Já registrei reclamação {tag}",
        ),
        "it": (
            "{b} mi addebita un abbonamento mai sottoscritto. Truffa {tag}",
            "{at} costi nascosti ovunque con {b}, è un furto {tag}",
            "Truffato da {b}. Ho fatto denuncia {tag}",
        ),
    },
}

#: Neutral, topical texts (questions, news) that surround a crisis without taking sides.
CRISIS_NEUTRAL: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "outage": {
        "en": ("Is {b} down for anyone else?", "{b} says it is investigating reports of an outage"),
        "es": ("¿Se ha caído {b} o solo me pasa a mí?", "{b} investiga una posible caída"),
        "fr": ("{b} est en panne chez vous aussi ?", "{b} enquête sur une panne signalée"),
        "de": ("Ist {b} bei euch auch down?", "{b} prüft Berichte über eine Störung"),
        "pt": ("{b} caiu pra mais alguém?", "{b} investiga relatos de instabilidade"),
        "it": ("{b} non funziona anche a voi?", "{b} verifica segnalazioni di un disservizio"),
    },
    "recall": {
        "en": ("{b} announces a voluntary recall of some units",
               "How do I check if my {b} is part of the recall?"),
        "es": ("{b} anuncia la retirada voluntaria de algunas unidades",
               "¿Cómo sé si mi {b} está afectado por la retirada?"),
        "fr": ("{b} annonce un rappel volontaire de certains appareils",
               "Comment savoir si mon {b} est concerné par le rappel ?"),
        "de": ("{b} kündigt einen freiwilligen Rückruf an",
               "Wie finde ich raus, ob mein {b} vom Rückruf betroffen ist?"),
        "pt": ("{b} anuncia recall voluntário de algumas unidades",
               "Como saber se meu {b} está no recall?"),
        "it": ("{b} annuncia un richiamo volontario di alcune unità",
               "Come verifico se il mio {b} rientra nel richiamo?"),
    },
    "data breach": {
        "en": ("{b} confirms a security incident affecting customer accounts",
               "Should I change my {b} password after the breach news?"),
        "es": ("{b} confirma un incidente de seguridad en cuentas de clientes",
               "¿Hay que cambiar la contraseña de {b}?"),
        "fr": ("{b} confirme un incident de sécurité touchant des comptes clients",
               "Faut-il changer son mot de passe {b} ?"),
        "de": ("{b} bestätigt einen Sicherheitsvorfall bei Kundenkonten",
               "Sollte man jetzt das {b} Passwort ändern?"),
        "pt": ("{b} confirma incidente de segurança em contas de clientes",
               "Preciso trocar minha senha do {b}?"),
        "it": ("{b} conferma un incidente di sicurezza sugli account dei clienti",
               "Bisogna cambiare la password di {b}?"),
    },
    "boycott": {
        "en": ("Calls to boycott {b} are trending today",
               "{b} has not yet responded to the boycott calls"),
        "es": ("Las llamadas al boicot contra {b} son tendencia",
               "{b} aún no ha respondido a las críticas"),
        "fr": ("Les appels au boycott de {b} sont en tendance",
               "{b} n'a pas encore réagi aux appels au boycott"),
        "de": ("Boykottaufrufe gegen {b} trenden heute",
               "{b} hat sich noch nicht zu den Boykottaufrufen geäußert"),
        "pt": ("Pedidos de boicote a {b} estão em alta hoje",
               "{b} ainda não respondeu aos pedidos de boicote"),
        "it": ("Gli appelli al boicottaggio di {b} sono in tendenza",
               "{b} non ha ancora risposto agli appelli al boicottaggio"),
    },
    "fraud": {
        "en": ("Regulators are looking into billing complaints about {b}",
               "Anyone know how to dispute a {b} charge?"),
        "es": ("Los reguladores investigan quejas de cobros de {b}",
               "¿Alguien sabe cómo reclamar un cargo de {b}?"),
        "fr": ("Les autorités examinent des plaintes de facturation contre {b}",
               "Quelqu'un sait comment contester un prélèvement {b} ?"),
        "de": ("Behörden prüfen Beschwerden über Abbuchungen von {b}",
               "Weiß jemand, wie man eine {b} Abbuchung zurückholt?"),
        "pt": ("Órgãos reguladores investigam reclamações de cobrança de {b}",
               "Alguém sabe como contestar uma cobrança de {b}?"),
        "it": ("Le autorità esaminano reclami sugli addebiti di {b}",
               "Qualcuno sa come contestare un addebito di {b}?"),
    },
}

#: Crisis hashtags per topic; ``{name}`` is the brand name without spaces or punctuation.
TOPIC_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "outage": ("#{name}Down", "#{name}Outage"),
    "recall": ("#{name}Recall",),
    "data breach": ("#{name}Breach", "#{name}Leak"),
    "boycott": ("#Boycott{name}",),
    "fraud": ("#{name}Scam", "#{name}Fraud"),
}

#: Occasional decoration, matched to the sentiment so it never contradicts the text.
EMOJI: Final[dict[SimSentiment, tuple[str, ...]]] = {
    "positive": ("😍", "🙌", "🔥", "👏", "❤️", "✨", "💯"),
    "neutral": ("🤔", "👀", "📦", "📱"),
    "negative": ("😡", "🤬", "👎", "😤", "🙄", "💀"),
}

#: Everyday hashtags, appended now and then so not every tag is a crisis signal.
CASUAL_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("#tech", "#customerservice", "#MondayMood", "#review"),
    "es": ("#tecnología", "#opinión", "#atencionalcliente"),
    "fr": ("#tech", "#avis", "#serviceclient"),
    "de": ("#Technik", "#Erfahrung", "#Kundenservice"),
    "pt": ("#tecnologia", "#atendimento", "#dica"),
    "it": ("#tecnologia", "#recensione", "#assistenza"),
}

FIRST_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "en": ("James", "Emily", "Michael", "Olivia", "Daniel", "Sophie", "Ryan", "Hannah",
           "Chris", "Megan", "Tyler", "Ashley", "Jordan", "Priya", "Kevin", "Grace"),
    "es": ("Lucía", "Javier", "María", "Carlos", "Sofía", "Alejandro", "Paula", "Diego",
           "Carmen", "Pablo", "Valentina", "Andrés"),
    "fr": ("Camille", "Lucas", "Léa", "Hugo", "Chloé", "Louis", "Manon", "Théo", "Inès",
           "Julien"),
    "de": ("Lukas", "Anna", "Felix", "Laura", "Jonas", "Lea", "Maximilian", "Sarah", "Paul",
           "Katharina"),
    "pt": ("João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Juliana",
           "Rafael", "Camila"),
    "it": ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Sara", "Matteo",
           "Martina", "Davide"),
}

LAST_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "en": ("Smith", "Johnson", "Brown", "Taylor", "Walker", "Harris", "Clark", "Lewis",
           "Young", "King", "Patel", "Nguyen"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Torres",
           "Navarro", "Romero"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy",
           "Moreau", "Fournier"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Hoffmann", "Koch"),
    "pt": ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida",
           "Ferreira", "Carvalho"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
           "Marino", "Greco"),
}

#: High-reach accounts (media, influencers): (handle, display name). All fictional.
BIG_ACCOUNTS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "en": (("TechDailyNews", "Tech Daily News"), ("ConsumerWatch", "Consumer Watch"),
           ("gadgetguru", "The Gadget Guru"), ("MarketWireNow", "MarketWire Now")),
    "es": (("NoticiasTecHoy", "Noticias Tec Hoy"), ("ElConsumidor", "El Consumidor"),
           ("laura_reviews", "Laura Reviews")),
    "fr": (("TechActuFR", "Tech Actu"), ("ConsoInfo", "Conso Info")),
    "de": (("TechNewsDE", "Tech News DE"), ("VerbraucherHeute", "Verbraucher Heute")),
    "pt": (("TecnoBrasil", "Tecno Brasil"), ("DefesaConsumidor", "Defesa do Consumidor")),
    "it": (("TecnoItalia", "Tecno Italia"), ("ConsumatoriOggi", "Consumatori Oggi")),
}
